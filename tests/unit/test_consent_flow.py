"""The consent services on the in-memory fakes with a fixed clock: requesting (rules 12-14) and deciding (15-16)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from mci.domain.claims import MAX_RESENDS, ClaimState, Decision, EmailStatus
from mci.domain.consent_decision import PageStatus
from mci.domain.consent_token import token_hash
from mci.domain.errors import Conflict, DeadlinePassed, DependencyUnavailable, Forbidden, NotFound, ValidationFailed
from mci.domain.principal import Principal
from tests.support.consent import FIRST_REQUEST, PUBLIC_BASE_URL, MemoryConsent, token_in
from tests.support.reference import CONTOSO, FABRIKAM_TENANT, NORTHWIND, NOW, SECURITY

HOUR = timedelta(hours=1)
DEADLINE = NOW + timedelta(days=30)


@pytest.fixture
def world() -> MemoryConsent:
    return MemoryConsent()


def refused(call: Callable[[], Any], error: type[Exception]) -> Any:
    with pytest.raises(error) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------- first request (rule 13)


def test_the_first_request_needs_a_deal_size_and_the_disclaimer(world: MemoryConsent) -> None:
    claim = world.add_claim()
    error = refused(lambda: world.request(claim.claim_id), ValidationFailed)
    assert error.status == 422
    assert {e.field for e in error.errors} == {"deal_size_usd", "disclaimer_accepted"}
    error = refused(
        lambda: world.request(claim.claim_id, deal_size_usd=100, disclaimer_accepted=False), ValidationFailed
    )
    assert [e.field for e in error.errors] == ["disclaimer_accepted"]
    error = refused(lambda: world.request(claim.claim_id, disclaimer_accepted=True), ValidationFailed)
    assert [e.field for e in error.errors] == ["deal_size_usd"]
    assert world.stored(claim.claim_id) == claim
    assert world.mailer.sent == []
    assert world.claims.tokens == {}


def test_the_first_request_asks_the_customer_in_its_language(world: MemoryConsent) -> None:
    claim = world.add_claim()
    after = world.request(claim.claim_id, **FIRST_REQUEST)
    assert after.state is ClaimState.CONSENT_REQUESTED
    assert after.deal_size_usd == Decimal(25000)
    assert after.consent_requests.count == 1
    assert after.consent_requests.last_sent_at == NOW
    assert after.consent_email is not None
    assert after.consent_email.status is EmailStatus.SENT
    assert after.consent_email.message_id == "memory-1"
    assert after.history[-1].to is ClaimState.CONSENT_REQUESTED
    assert world.stored(claim.claim_id) == after
    [email] = world.mailer.sent
    assert email.to == "ana@fabrikam.com"
    assert email.subject == "Contoso Partners Madrid solicita su consentimiento: Azure Migrate assessment"
    assert "27 de diciembre de 2026" in email.text
    assert "Lo que acepta" in email.text
    assert email.tags == {"claim_id": claim.claim_id, "kind": "consent_request"}
    token = token_in(email.text)
    assert f"{PUBLIC_BASE_URL}/consent/{token}" in email.text
    assert after.consent_token_hash == token_hash(token)
    assert set(world.claims.tokens) == {token_hash(token)}


def test_the_deal_size_is_locked_after_the_first_request(world: MemoryConsent) -> None:
    claim = world.add_claim()
    world.requested(claim.claim_id)
    world.clock.advance(HOUR)
    error = refused(lambda: world.request(claim.claim_id, deal_size_usd=30000), Conflict)
    assert (error.code, error.status) == ("deal_size_locked", 409)
    assert world.stored(claim.claim_id).consent_requests.count == 1
    assert len(world.mailer.sent) == 1
    world.request(claim.claim_id, deal_size_usd=25000)
    world.clock.advance(HOUR)
    world.request(claim.claim_id)
    assert world.stored(claim.claim_id).deal_size_usd == Decimal(25000)
    assert len(world.mailer.sent) == 3


def test_another_partners_claim_is_answered_like_a_missing_one(world: MemoryConsent) -> None:
    claim = world.add_claim()
    other = refused(lambda: world.request(claim.claim_id, NORTHWIND, **FIRST_REQUEST), NotFound)
    missing = refused(lambda: world.request("no-such-claim", **FIRST_REQUEST), NotFound)
    too_long = refused(lambda: world.request("x" * 65, **FIRST_REQUEST), NotFound)
    assert str(other) == str(missing) == str(too_long)
    assert world.mailer.sent == []


def test_requesting_consent_needs_an_incentives_role(world: MemoryConsent) -> None:
    claim = world.add_claim()
    viewer = Principal(partner_id=CONTOSO, roles=frozenset({"referral_admin"}))
    refused(lambda: world.requests.request(viewer, claim.claim_id, _command(FIRST_REQUEST)), Forbidden)
    assert world.stored(claim.claim_id) == claim


def _command(fields: dict[str, Any]) -> Any:
    from mci.domain.commands import ConsentRequest

    return ConsentRequest.model_validate(fields)


# ---------------------------------------------------------------- resend (rules 12, 14)


def test_a_resend_within_the_hour_is_refused(world: MemoryConsent) -> None:
    claim = world.add_claim()
    world.requested(claim.claim_id)
    world.clock.advance(HOUR - timedelta(seconds=1))
    error = refused(lambda: world.request(claim.claim_id), Conflict)
    assert (error.code, error.status) == ("resend_limit", 409)
    assert len(world.mailer.sent) == 1
    world.clock.advance(timedelta(seconds=1))
    after = world.request(claim.claim_id)
    assert after.consent_requests.count == 2
    assert after.consent_requests.last_sent_at == NOW + HOUR
    assert len(world.mailer.sent) == 2


def test_at_most_five_resends(world: MemoryConsent) -> None:
    claim = world.add_claim()
    world.requested(claim.claim_id)
    for _ in range(MAX_RESENDS):
        world.clock.advance(HOUR)
        world.request(claim.claim_id)
    assert MAX_RESENDS == 5
    assert world.stored(claim.claim_id).consent_requests.count == 6
    world.clock.advance(timedelta(days=1))
    error = refused(lambda: world.request(claim.claim_id), Conflict)
    assert error.code == "resend_limit"
    assert len(world.mailer.sent) == 6
    assert world.stored(claim.claim_id).consent_requests.count == 6


def test_resending_never_moves_the_consent_deadline(world: MemoryConsent) -> None:
    claim = world.add_claim()
    assert claim.consent_deadline == DEADLINE
    world.requested(claim.claim_id)
    for hours in (1, 30, 24 * 20):
        world.at(NOW + hours * HOUR)
        token = world.requested(claim.claim_id, customer_contact={"name": "Ana", "email": "ana@fabrikam.com"})
        assert world.stored(claim.claim_id).consent_deadline == DEADLINE
        assert world.claims.tokens[token_hash(token)].expires_at == DEADLINE
    assert "27 December 2026" in world.mailer.sent[-1].text


def test_no_resend_after_the_deadline(world: MemoryConsent) -> None:
    claim = world.add_claim()
    world.requested(claim.claim_id)
    before = world.stored(claim.claim_id)
    world.at(DEADLINE)
    error = refused(lambda: world.request(claim.claim_id), DeadlinePassed)
    assert (error.code, error.status) == ("deadline_passed", 410)
    assert world.stored(claim.claim_id) == before
    assert len(world.mailer.sent) == 1


@pytest.mark.parametrize("decision", list(Decision))
def test_no_resend_once_the_customer_has_answered(world: MemoryConsent, decision: Decision) -> None:
    claim = world.add_claim()
    token = world.requested(claim.claim_id)
    world.decisions.decide(token, decision)
    decided = world.stored(claim.claim_id)
    world.clock.advance(2 * HOUR)
    error = refused(lambda: world.request(claim.claim_id), Conflict)
    assert (error.code, error.status) == ("invalid_state", 409)
    assert world.stored(claim.claim_id) == decided
    assert world.claims.tokens == {}


def test_a_resend_rotates_the_link(world: MemoryConsent) -> None:
    claim = world.add_claim()
    old = world.requested(claim.claim_id)
    world.clock.advance(HOUR)
    new = world.requested(claim.claim_id, deal_size_usd=25000)
    assert new != old
    assert world.decisions.page(old).status is PageStatus.GONE
    assert world.decisions.decide(old, Decision.ACCEPT).status is PageStatus.GONE
    assert world.decisions.page(new).status is PageStatus.OPEN
    assert set(world.claims.tokens) == {token_hash(new)}
    assert world.stored(claim.claim_id).state is ClaimState.CONSENT_REQUESTED


def test_a_resend_may_update_the_contacts_and_goes_to_the_new_address(world: MemoryConsent) -> None:
    claim = world.add_claim()
    world.requested(claim.claim_id)
    world.clock.advance(HOUR)
    after = world.request(
        claim.claim_id,
        customer_contact={"name": "Luis Pérez", "email": "Luis@Fabrikam.com", "language": "en"},
        partner_contact={"name": "Jo Park", "email": "jo@contoso-partners.com"},
    )
    assert after.customer_contact.email == "Luis@fabrikam.com"
    assert after.partner_contact.name == "Jo Park"
    assert after.consent_email is not None
    assert after.consent_email.to == "Luis@fabrikam.com"
    email = world.mailer.sent[-1]
    assert email.to == "Luis@fabrikam.com"
    assert email.subject == "Contoso Partners Madrid asks for your consent: Azure Migrate assessment"
    assert "Hello Luis Pérez" in email.text
    assert "Partner contact: Jo Park <jo@contoso-partners.com>" in email.text
    page = world.decisions.page(token_in(email.text))
    assert page.page is not None
    assert page.page.language == "en"


# ---------------------------------------------------------------- SES throttling


def test_a_throttled_first_send_leaves_the_claim_pending_and_the_retry_sends_once(world: MemoryConsent) -> None:
    claim = world.add_claim()
    world.mailer.fail_next = 1
    error = refused(lambda: world.request(claim.claim_id, **FIRST_REQUEST), DependencyUnavailable)
    assert error.status == 503
    assert error.retry_after_seconds >= 1
    pending = world.stored(claim.claim_id)
    assert pending.state is ClaimState.CONSENT_REQUESTED
    assert pending.consent_email is not None
    assert pending.consent_email.status is EmailStatus.PENDING
    assert pending.consent_requests.count == 1
    assert world.mailer.sent == []
    undelivered = pending.consent_token_hash
    assert undelivered in world.claims.tokens

    # The retry comes at once: it is a redelivery, not a resend, so neither the hour nor the count applies.
    world.clock.advance(timedelta(seconds=2))
    after = world.request(claim.claim_id, **FIRST_REQUEST)
    assert after.consent_requests.count == 1
    assert after.consent_requests.last_sent_at == NOW
    assert after.consent_email is not None
    assert after.consent_email.status is EmailStatus.SENT
    [email] = world.mailer.sent
    token = token_in(email.text)
    assert set(world.claims.tokens) == {token_hash(token)}
    assert undelivered not in world.claims.tokens
    assert world.claims.get_token(str(undelivered)) is None
    assert world.decisions.page(token).status is PageStatus.OPEN


def test_a_throttled_resend_counts_once(world: MemoryConsent) -> None:
    claim = world.add_claim()
    world.requested(claim.claim_id)
    world.clock.advance(HOUR)
    world.mailer.fail_next = 1
    refused(lambda: world.request(claim.claim_id), DependencyUnavailable)
    assert world.stored(claim.claim_id).consent_requests.count == 2
    after = world.request(claim.claim_id)
    assert after.consent_requests.count == 2
    assert after.consent_email is not None
    assert after.consent_email.status is EmailStatus.SENT
    assert len(world.mailer.sent) == 2


def test_a_throttled_retry_still_cannot_change_the_deal_size(world: MemoryConsent) -> None:
    claim = world.add_claim()
    world.mailer.fail_next = 1
    refused(lambda: world.request(claim.claim_id, **FIRST_REQUEST), DependencyUnavailable)
    error = refused(lambda: world.request(claim.claim_id, deal_size_usd=99), Conflict)
    assert error.code == "deal_size_locked"


# ---------------------------------------------------------------- the page (rule 15)


def test_reading_the_page_changes_nothing(world: MemoryConsent) -> None:
    claim = world.add_claim()
    token = world.requested(claim.claim_id)
    before, tokens = world.stored(claim.claim_id), dict(world.claims.tokens)
    for _ in range(3):
        page = world.decisions.page(token)
        assert page.status is PageStatus.OPEN
        assert page.deadline == DEADLINE
        assert page.page is not None
        assert (page.page.language, page.page.partner_name) == ("es", "Contoso Partners Madrid")
    assert world.stored(claim.claim_id) == before
    assert world.claims.tokens == tokens
    assert len(world.mailer.sent) == 1


@pytest.mark.parametrize("text", ["", "short", "A" * 43, "A" * 44, "../" * 15, "A" * 42 + "="])
def test_unknown_and_malformed_links_are_gone(world: MemoryConsent, text: str) -> None:
    claim = world.add_claim()
    world.requested(claim.claim_id)
    before = world.stored(claim.claim_id)
    assert world.decisions.page(text).status is PageStatus.GONE
    assert world.decisions.decide(text, Decision.ACCEPT).status is PageStatus.GONE
    assert world.stored(claim.claim_id) == before


def test_an_expired_link_is_gone_and_deciding_on_it_changes_nothing(world: MemoryConsent) -> None:
    claim = world.add_claim()
    token = world.requested(claim.claim_id)
    before = world.stored(claim.claim_id)
    world.at(DEADLINE - timedelta(microseconds=1))
    assert world.decisions.page(token).status is PageStatus.OPEN
    world.at(DEADLINE)
    assert world.decisions.page(token).status is PageStatus.GONE
    for decision in Decision:
        assert world.decisions.decide(token, decision).status is PageStatus.GONE
    assert world.stored(claim.claim_id) == before
    assert len(world.mailer.sent) == 1


# ---------------------------------------------------------------- decisions (rule 16)


def test_accepting_grants_consent_and_makes_a_known_customer(world: MemoryConsent) -> None:
    claim = world.add_claim()
    token = world.requested(claim.claim_id)
    decided_at = NOW + timedelta(days=3, hours=5)
    world.at(decided_at)
    view = world.decisions.decide(token, Decision.ACCEPT)
    assert (view.status, view.decision) == (PageStatus.OPEN, Decision.ACCEPT)
    after = world.stored(claim.claim_id)
    assert after.state is ClaimState.CONSENT_GRANTED
    assert after.submission_deadline == decided_at + timedelta(days=90)
    assert after.consent_decision is not None
    assert (after.consent_decision.decision, after.consent_decision.at) == (Decision.ACCEPT, decided_at)
    assert after.consent_token_hash is None
    assert (after.history[-1].actor, after.history[-1].to) == ("customer", ClaimState.CONSENT_GRANTED)
    [known] = world.claims.list_known_customers(CONTOSO)
    assert known.customer_id == f"tenant_id:{FABRIKAM_TENANT}"
    assert (known.identifier_type, known.identifier_value) == ("tenant_id", FABRIKAM_TENANT)
    assert known.last_claim_id == claim.claim_id
    assert world.claims.list_known_customers(NORTHWIND) == []
    notice = world.mailer.sent[-1]
    assert notice.to == "sam@contoso-partners.com"
    assert notice.subject == "Consent granted for Fabrikam migration (Azure Migrate assessment)"
    assert "28 February 2027" in notice.text  # decided 30 Nov 2026, plus 90 days
    assert world.claims.tokens == {}
    # The link is spent: the page is neutral and a second answer changes nothing.
    assert world.decisions.page(token).status is PageStatus.GONE
    assert world.decisions.decide(token, Decision.DECLINE).status is PageStatus.GONE
    assert world.stored(claim.claim_id) == after
    assert len(world.mailer.sent) == 2


def test_declining_ends_the_claim_and_frees_the_customer(world: MemoryConsent) -> None:
    claim = world.add_claim(engagement_ids=[SECURITY])  # at most one active claim per customer
    token = world.requested(claim.claim_id)
    conflict = refused(lambda: world.add_claim(NORTHWIND, engagement_ids=[SECURITY]), Conflict)
    assert conflict.code == "active_claim_limit_reached"
    assert world.claims.active_count(SECURITY, claim.customer_key) == 1

    view = world.decisions.decide(token, Decision.DECLINE)
    assert view.decision is Decision.DECLINE
    after = world.stored(claim.claim_id)
    assert after.state is ClaimState.CONSENT_DECLINED
    assert after.state.is_terminal
    assert after.submission_deadline is None
    assert world.claims.active_count(SECURITY, claim.customer_key) == 0
    assert world.claims.list_known_customers(CONTOSO) == []
    notice = world.mailer.sent[-1]
    assert notice.to == "sam@contoso-partners.com"
    assert notice.subject == "Consent declined for Fabrikam migration (Security workshop)"

    northwind = world.add_claim(NORTHWIND, engagement_ids=[SECURITY])
    assert northwind.state is ClaimState.PENDING_CONSENT
    assert world.claims.active_count(SECURITY, claim.customer_key) == 1


def test_a_lost_partner_notice_does_not_undo_the_decision(world: MemoryConsent) -> None:
    claim = world.add_claim()
    token = world.requested(claim.claim_id)
    world.mailer.fail_next = 1
    assert world.decisions.decide(token, Decision.ACCEPT).decision is Decision.ACCEPT
    assert world.stored(claim.claim_id).state is ClaimState.CONSENT_GRANTED


class ReadTogether:
    """A claim store whose first read in each thread waits for the other threads' first reads.

    So every decision reads the same claim version before any of them writes: the race is certain.
    """

    def __init__(self, inner: Any, parties: int) -> None:
        self._inner = inner
        self._barrier = threading.Barrier(parties, timeout=10)
        self._seen: set[int] = set()

    def get_claim(self, claim_id: str) -> Any:
        found = self._inner.get_claim(claim_id)
        if threading.get_ident() not in self._seen:
            self._seen.add(threading.get_ident())
            self._barrier.wait()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize("trial", range(10))
def test_of_simultaneous_answers_exactly_one_wins(trial: int) -> None:
    world = MemoryConsent()
    claim = world.add_claim()
    token = world.requested(claim.claim_id)
    decisions = [Decision.ACCEPT, Decision.DECLINE] * 2
    world.decisions.claims = ReadTogether(world.claims, len(decisions))  # type: ignore[assignment]
    start = threading.Barrier(len(decisions), timeout=10)
    views: dict[int, Any] = {}

    def answer(index: int) -> None:
        start.wait()
        views[index] = world.decisions.decide(token, decisions[index])

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(len(decisions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(views) == len(decisions)
    winners = [i for i, view in views.items() if view.decision is not None]
    assert len(winners) == 1
    assert all(views[i].status is PageStatus.GONE for i in views if i not in winners)
    after = world.stored(claim.claim_id)
    won = decisions[winners[0]]
    expected = ClaimState.CONSENT_GRANTED if won is Decision.ACCEPT else ClaimState.CONSENT_DECLINED
    assert after.state is expected
    assert after.version == claim.version + 4  # requested, sent, decided, notice sent: nothing else
    assert [h.to for h in after.history].count(expected) == 1
    assert len(world.mailer.sent) == 2  # the consent request and one partner notice
    assert len(world.claims.list_known_customers(CONTOSO)) == (1 if won is Decision.ACCEPT else 0)
