"""Rules 17-20 on the in-memory fakes: submit, cancel and review, ownership, history, counters, races."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from mci.domain.claims import Claim, ClaimState, Decision
from mci.domain.commands import Cancellation, Review, ReviewDecision, Submission
from mci.domain.consent_decision import PageStatus
from mci.domain.errors import Conflict, DeadlinePassed, DependencyUnavailable, DomainError, Forbidden, NotFound
from mci.domain.lifecycle import Lifecycle
from mci.domain.ports import ClaimChange, ConcurrentChange
from mci.domain.principal import Principal
from tests.support.consent import FIRST_REQUEST, principal, token_in
from tests.support.memory_lifecycle import OPERATIONS, MemoryLifecycle
from tests.support.reference import CONTOSO, MIGRATE, NORTHWIND, NOW, SECURITY
from tests.support.store_snapshots import assert_all_counters_match

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
S = ClaimState


@pytest.fixture
def world() -> Iterator[MemoryLifecycle]:
    made = MemoryLifecycle()
    yield made
    assert_all_counters_match(made.view)  # rule 11 after every test: each counter equals its active claims


def refused(call: Callable[[], Any], error: type[DomainError]) -> Any:
    with pytest.raises(error) as caught:
        call()
    return caught.value


def every_state(world: MemoryLifecycle) -> dict[str, Claim]:
    """One claim of Contoso per state, and three lapsed ones (past a deadline, not swept), one customer each."""
    claims: dict[str, Claim] = {}
    claims["expired"] = world.numbered(4)  # consent deadline NOW + 30 days
    world.at(NOW + DAY)
    claims["lapsed_granted"] = world.numbered(1)
    world.accept(claims["lapsed_granted"].claim_id)  # submission deadline NOW + 91 days
    world.at(NOW + 30 * DAY)
    assert world.sweep().expired_ids == [claims["expired"].claim_id]
    world.at(NOW + 60 * DAY)
    claims["lapsed_pending"] = world.numbered(2)
    claims["lapsed_requested"] = world.numbered(3)
    world.requested(claims["lapsed_requested"].claim_id)  # both: consent deadline NOW + 90 days
    world.at(NOW + 91 * DAY)
    claims["pending_consent"] = world.numbered(5)
    claims["consent_requested"] = world.numbered(6)
    world.requested(claims["consent_requested"].claim_id)
    claims["consent_granted"] = world.numbered(7)
    world.accept(claims["consent_granted"].claim_id)
    for n, name in ((8, "submitted"), (9, "completed"), (10, "rejected")):
        claims[name] = world.numbered(n)
        world.accept(claims[name].claim_id)
        world.submit(claims[name].claim_id)
    world.review(claims["completed"].claim_id, "complete")
    world.review(claims["rejected"].claim_id, "reject")
    claims["cancelled"] = world.numbered(11)
    world.cancel(claims["cancelled"].claim_id)
    claims["consent_declined"] = world.numbered(12)
    world.request(claims["consent_declined"].claim_id, **FIRST_REQUEST)
    world.decisions.decide(token_in(world.mailer.sent[-1].text), Decision.DECLINE)
    stored = {name: world.stored(claim.claim_id) for name, claim in claims.items()}
    now = world.clock.now()
    for name, claim in stored.items():
        expected = "expired" if name.startswith("lapsed_") else name
        assert claim.effective_state(now).value == expected, name
    return stored


# ---------------------------------------------------------------- rule 19, state by state


def test_every_state_refuses_what_rule_19_forbids_and_changes_nothing(world: MemoryLifecycle) -> None:
    claims = every_state(world)
    before = dict(world.claims.claims)
    now = world.clock.now()
    for name, claim in claims.items():
        seen = claim.effective_state(now).value
        if name != "consent_granted":
            error = refused(lambda c=claim: world.submit(c.claim_id), DomainError)
            if name == "lapsed_granted":
                assert isinstance(error, DeadlinePassed)
                assert error.status == 410
            else:
                assert (type(error), error.code, error.extra) == (Conflict, "invalid_state", {"state": seen}), name
        if name not in ("pending_consent", "consent_requested", "consent_granted"):
            error = refused(lambda c=claim: world.cancel(c.claim_id), Conflict)
            assert (error.status, error.code, error.extra) == (409, "invalid_state", {"state": seen}), name
        if name != "submitted":
            for decision in ("complete", "reject"):
                error = refused(lambda c=claim, d=decision: world.review(c.claim_id, d), Conflict)
                assert (error.code, error.extra) == ("invalid_state", {"state": seen}), name
    assert world.claims.claims == before
    assert_all_counters_match(world.view)


def test_submit_moves_a_consented_claim_to_submitted(world: MemoryLifecycle) -> None:
    granted = world.granted()
    world.at(NOW + 3 * DAY)
    after = world.submit(granted.claim_id, notes="  delivered on site  ")
    assert after.state is S.SUBMITTED
    assert after.submission_notes == "delivered on site"
    assert after.version == granted.version + 1
    assert after.history[:-1] == granted.history
    last = after.history[-1]
    assert (last.at, last.actor, last.from_, last.to, last.reason) == (
        NOW + 3 * DAY,
        f"partner:{CONTOSO}/user:user-1",
        S.CONSENT_GRANTED,
        S.SUBMITTED,
        "submitted",
    )
    assert world.stored(granted.claim_id) == after
    assert world.view.counter(MIGRATE, granted.customer_key).active_count == 1  # type: ignore[union-attr]
    assert after.due_at is None  # nothing left for the sweep


def test_submit_on_the_last_instant_and_one_after(world: MemoryLifecycle) -> None:
    on_time = world.granted()
    late = world.granted(engagement_ids=[SECURITY])
    deadline = late.submission_deadline
    assert deadline == NOW + 90 * DAY
    world.at(deadline - timedelta(microseconds=1))
    assert world.submit(on_time.claim_id).state is S.SUBMITTED
    world.at(deadline)
    error = refused(lambda: world.submit(late.claim_id), DeadlinePassed)
    assert (error.status, error.code) == (410, "deadline_passed")
    assert world.stored(late.claim_id) == late


# ---------------------------------------------------------------- cancel


@pytest.mark.parametrize("state", ["pending_consent", "consent_requested", "consent_granted"])
def test_cancel_ends_an_active_claim_with_the_reason_and_frees_the_customer(world: MemoryLifecycle, state: str) -> None:
    claim = world.add(engagement_ids=[SECURITY])
    if state != "pending_consent":
        token = world.requested(claim.claim_id)
        if state == "consent_granted":
            world.decisions.decide(token, Decision.ACCEPT)
    refused(lambda: world.add(NORTHWIND, engagement_ids=[SECURITY]), Conflict)
    world.at(NOW + 2 * HOUR)
    before = world.stored(claim.claim_id)
    after = world.cancel(claim.claim_id, reason="  budget cut  ")
    assert after.state is S.CANCELLED
    assert after.history[:-1] == before.history
    last = after.history[-1]
    assert (last.at, last.from_, last.to, last.reason) == (NOW + 2 * HOUR, S(state), S.CANCELLED, "budget cut")
    assert last.actor == f"partner:{CONTOSO}/user:user-1"
    assert after.consent_token_hash is None
    assert world.claims.tokens == {}
    assert world.view.counter(SECURITY, claim.customer_key).active_count == 0  # type: ignore[union-attr]
    assert world.add(NORTHWIND, engagement_ids=[SECURITY]).state is S.PENDING_CONSENT
    assert_all_counters_match(world.view)


def test_a_cancelled_claims_consent_link_shows_the_neutral_page(world: MemoryLifecycle) -> None:
    claim = world.add()
    token = world.requested(claim.claim_id)
    world.cancel(claim.claim_id)
    assert world.decisions.page(token).status is PageStatus.GONE
    assert world.decisions.decide(token, Decision.ACCEPT).status is PageStatus.GONE
    assert world.stored(claim.claim_id).state is S.CANCELLED
    assert world.claims.known == {}


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_a_cancellation_needs_a_reason(reason: str) -> None:
    with pytest.raises(ValidationError):
        Cancellation.model_validate({"reason": reason})


# ---------------------------------------------------------------- review


@pytest.mark.parametrize(("decision", "state"), [("complete", S.COMPLETED), ("reject", S.REJECTED)])
def test_operations_complete_or_reject_a_submitted_claim(world: MemoryLifecycle, decision: str, state: S) -> None:
    submitted = world.submitted(engagement_ids=[SECURITY])
    world.at(NOW + DAY)
    after = world.review(submitted.claim_id, decision, "evidence checked")
    assert after.state is state
    last = after.history[-1]
    assert (last.at, last.actor, last.from_, last.to, last.reason) == (
        NOW + DAY,
        "operations:ops-1",
        S.SUBMITTED,
        state,
        "evidence checked",
    )
    assert world.view.counter(SECURITY, submitted.customer_key).active_count == 0  # type: ignore[union-attr]
    assert world.add(NORTHWIND, engagement_ids=[SECURITY]).state is S.PENDING_CONSENT


def test_operations_review_any_partners_claim(world: MemoryLifecycle) -> None:
    theirs = world.submitted(NORTHWIND)
    assert world.review(theirs.claim_id).state is S.COMPLETED


@pytest.mark.parametrize(
    "roles", [{"incentives_user"}, {"incentives_admin"}, {"referral_admin"}, set()], ids=lambda r: "+".join(r) or "none"
)
def test_only_operations_review(world: MemoryLifecycle, roles: set[str]) -> None:
    submitted = world.submitted()
    for partner_id in (CONTOSO, NORTHWIND, OPERATIONS.partner_id):
        who = Principal(partner_id, frozenset(roles), "someone")
        error = refused(lambda w=who: world.review(submitted.claim_id, who=w), Forbidden)
        assert error.status == 403
    assert world.stored(submitted.claim_id) == submitted


@pytest.mark.parametrize("partner_role", ["incentives_user", "incentives_admin", "referral_admin"])
def test_operations_carrying_a_partner_role_do_not_review(world: MemoryLifecycle, partner_role: str) -> None:
    """Rule 30 (issue 12 item 6): a token with mci_operations and a partner role reviews nothing, its own
    partner's claim least of all, whatever organisation it names."""
    submitted = world.submitted(CONTOSO)
    for partner_id in (CONTOSO, OPERATIONS.partner_id):
        who = Principal(partner_id, frozenset({"mci_operations", partner_role}), "someone")
        error = refused(lambda w=who: world.review(submitted.claim_id, who=w), Forbidden)
        assert "partner role" in error.detail
    assert world.stored(submitted.claim_id) == submitted


def test_operations_of_a_partner_organisation_do_not_review(world: MemoryLifecycle) -> None:
    """Rule 30: mci_operations alone, but the token names a partner organisation: 403."""
    submitted = world.submitted(CONTOSO)
    for partner_id in (CONTOSO, NORTHWIND):
        who = Principal(partner_id, frozenset({"mci_operations"}), "someone")
        error = refused(lambda w=who: world.review(submitted.claim_id, who=w), Forbidden)
        assert "partner organisation" in error.detail
    assert world.stored(submitted.claim_id) == submitted


def test_reviewing_an_unknown_claim_is_not_found(world: MemoryLifecycle) -> None:
    for claim_id in ("no-such-claim", "x" * 65):
        assert refused(lambda c=claim_id: world.review(c), NotFound).status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "complete"},
        {"decision": "reject", "reason": " "},
        {"reason": "ok"},
        {"decision": "ok", "reason": "x"},
    ],
)
def test_a_review_needs_a_decision_and_a_reason(body: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Review.model_validate(body)
    assert Review.model_validate({"decision": "reject", "reason": "no evidence"}).decision is ReviewDecision.REJECT


# ---------------------------------------------------------------- roles and ownership


def test_only_incentives_roles_submit_or_cancel(world: MemoryLifecycle) -> None:
    granted = world.granted()
    for roles in ({"referral_admin"}, {"mci_operations"}, set()):
        who = Principal(CONTOSO, frozenset(roles), "u")
        refused(lambda w=who: world.lifecycle.submit(w, granted.claim_id, Submission()), Forbidden)
        refused(lambda w=who: world.lifecycle.cancel(w, granted.claim_id, Cancellation(reason="r")), Forbidden)
    admin = Principal(CONTOSO, frozenset({"incentives_admin"}), "admin-1")
    assert world.lifecycle.submit(admin, granted.claim_id, Submission()).history[-1].actor.endswith("user:admin-1")


def test_another_partners_claim_is_not_found_on_every_action(world: MemoryLifecycle) -> None:
    claims = [world.add(), world.granted(engagement_ids=[SECURITY])]
    before = dict(world.claims.claims)
    for claim in claims:
        errors = [
            refused(lambda c=claim: world.submit(c.claim_id, NORTHWIND), NotFound),
            refused(lambda c=claim: world.cancel(c.claim_id, NORTHWIND), NotFound),
            refused(lambda c=claim: world.request(c.claim_id, NORTHWIND, **FIRST_REQUEST), NotFound),
        ]
        unknown = [
            refused(lambda: world.submit("no-such-claim", NORTHWIND), NotFound),
            refused(lambda: world.cancel("no-such-claim", NORTHWIND), NotFound),
            refused(lambda: world.request("no-such-claim", NORTHWIND, **FIRST_REQUEST), NotFound),
        ]
        assert [(e.status, e.detail) for e in errors] == [(e.status, e.detail) for e in unknown]
    assert world.claims.claims == before


# ---------------------------------------------------------------- history and terminal claims (rules 18, 20)


def test_the_history_records_every_move_and_only_grows(world: MemoryLifecycle) -> None:
    claim = world.add()
    seen = [claim.history]
    for action in (
        lambda: world.requested(claim.claim_id),
        lambda: world.decisions.decide(token_in(world.mailer.sent[-1].text), Decision.ACCEPT),
        lambda: world.submit(claim.claim_id),
        lambda: world.review(claim.claim_id, "reject", "duplicate of another programme"),
    ):
        world.at(world.clock.now() + HOUR)
        action()
        history = world.stored(claim.claim_id).history
        assert history[: len(seen[-1])] == seen[-1]
        assert len(history) == len(seen[-1]) + 1
        assert history[-1].at == world.clock.now()
        assert history[-1].from_ is seen[-1][-1].to
        seen.append(history)
    assert [h.to for h in seen[-1]] == [
        S.PENDING_CONSENT,
        S.CONSENT_REQUESTED,
        S.CONSENT_GRANTED,
        S.SUBMITTED,
        S.REJECTED,
    ]
    assert all(h.actor and h.at for h in seen[-1])


def test_an_ended_claim_never_changes_again(world: MemoryLifecycle) -> None:
    claims = every_state(world)
    ended = {
        n: c for n, c in claims.items() if n in ("completed", "rejected", "cancelled", "consent_declined", "expired")
    }
    ended |= {n: c for n, c in claims.items() if n in ("lapsed_pending", "lapsed_granted")}
    before = {c.claim_id: world.stored(c.claim_id) for c in ended.values()}
    for name, claim in ended.items():
        for action, call in (
            ("submit", lambda c=claim: world.submit(c.claim_id)),
            ("cancel", lambda c=claim: world.cancel(c.claim_id)),
            ("review", lambda c=claim: world.review(c.claim_id)),
            ("review", lambda c=claim: world.review(c.claim_id, "reject")),
            ("request", lambda c=claim: world.request(c.claim_id, **FIRST_REQUEST)),
            ("request", lambda c=claim: world.request(c.claim_id)),
        ):
            error = refused(call, DomainError)
            expected = (410, "deadline_passed") if (action, name) in DEADLINE_PASSED else (409, "invalid_state")
            assert (error.status, error.code) == expected, (name, action, error)
    assert {c: world.stored(c) for c in before} == before


# 410 only where the deadline of the action itself passed (rules 17, 19): the consent deadline of a claim
# awaiting consent, the submission deadline of a consented one, swept or not. Every other refusal is 409.
DEADLINE_PASSED = {
    ("request", "expired"),
    ("request", "lapsed_pending"),
    ("request", "lapsed_requested"),
    ("submit", "lapsed_granted"),
}


def test_a_passed_deadline_answers_the_same_before_and_after_the_sweep(world: MemoryLifecycle) -> None:
    """Rule 17: exact expiry, so the sweep never changes the answer (410 for the action's own deadline)."""
    granted = world.granted()
    requested = world.add(engagement_ids=[SECURITY])
    world.requested(requested.claim_id)
    world.at(NOW + 91 * DAY)
    for _ in ("before the sweep", "after it"):
        error = refused(lambda: world.submit(granted.claim_id), DeadlinePassed)
        assert (error.status, error.code) == (410, "deadline_passed")
        for fields in (FIRST_REQUEST, {}):
            error = refused(lambda f=fields: world.request(requested.claim_id, **f), DeadlinePassed)
            assert (error.status, error.code) == (410, "deadline_passed")
        error = refused(lambda: world.request(granted.claim_id), Conflict)
        assert (error.status, error.code, error.extra) == (409, "invalid_state", {"state": "expired"})
        error = refused(lambda: world.submit(requested.claim_id), Conflict)
        assert (error.status, error.code, error.extra) == (409, "invalid_state", {"state": "expired"})
        for claim in (granted, requested):
            error = refused(lambda c=claim: world.cancel(c.claim_id), Conflict)
            assert (error.status, error.code) == (409, "invalid_state")
        assert sorted(world.sweep().expired_ids) in ([], sorted([granted.claim_id, requested.claim_id]))
    assert {world.stored(c.claim_id).state for c in (granted, requested)} == {S.EXPIRED}


# ---------------------------------------------------------------- exact expiry (rule 17)


def test_a_lapsed_claim_counts_for_nothing_and_the_next_add_expires_it(world: MemoryLifecycle) -> None:
    lapsed = world.add(engagement_ids=[SECURITY])
    world.at(NOW + 30 * DAY)
    assert world.stored(lapsed.claim_id).state is S.PENDING_CONSENT
    theirs = world.add(NORTHWIND, engagement_ids=[SECURITY])
    stored = world.stored(lapsed.claim_id)
    assert stored.state is S.EXPIRED
    assert [h.to for h in stored.history] == [S.PENDING_CONSENT, S.EXPIRED]
    assert stored.history[-1].at == NOW + 30 * DAY
    assert world.view.counter(SECURITY, lapsed.customer_key).holders == {theirs.claim_id}  # type: ignore[union-attr]
    assert world.view.guard(SECURITY, lapsed.customer_key, CONTOSO) is None
    assert world.sweep().examined == 0  # nothing left for the sweep to expire
    assert_all_counters_match(world.view)


# ---------------------------------------------------------------- races (rule 11 for lifecycle writes)


class OtherWriterFirst:
    """A claim store that lets another writer commit once, between this use case's read and its write."""

    def __init__(self, world: MemoryLifecycle, other: Callable[[], Any]) -> None:
        self.world = world
        self.other: Callable[[], Any] | None = other
        self.applies = 0

    def apply(self, change: ClaimChange) -> None:
        self.applies += 1
        if self.other is not None:
            other, self.other = self.other, None
            other()
        self.world.claims.apply(change)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world.claims, name)


def racing(world: MemoryLifecycle, other: Callable[[], Any]) -> tuple[Lifecycle, OtherWriterFirst]:
    store = OtherWriterFirst(world, other)
    return Lifecycle(claims=store, clock=world.clock, sleep=lambda _: None), store  # type: ignore[arg-type]


def test_a_cancel_that_loses_a_race_to_the_customers_consent_cancels_the_consented_claim(
    world: MemoryLifecycle,
) -> None:
    claim = world.add()
    token = world.requested(claim.claim_id)
    lifecycle, store = racing(world, lambda: world.decisions.decide(token, Decision.ACCEPT))
    after = lifecycle.cancel(principal(), claim.claim_id, Cancellation(reason="too slow"))
    assert store.applies == 2
    assert [h.to for h in after.history] == [S.PENDING_CONSENT, S.CONSENT_REQUESTED, S.CONSENT_GRANTED, S.CANCELLED]
    assert world.stored(claim.claim_id) == after
    assert_all_counters_match(world.view)


def test_a_submit_that_loses_a_race_to_a_cancel_is_refused(world: MemoryLifecycle) -> None:
    granted = world.granted()
    lifecycle, _ = racing(world, lambda: world.cancel(granted.claim_id))
    error = refused(lambda: lifecycle.submit(principal(), granted.claim_id, Submission()), Conflict)
    assert error.extra == {"state": "cancelled"}
    assert [h.to for h in world.stored(granted.claim_id).history].count(S.SUBMITTED) == 0


def test_two_reviews_at_once_record_one_decision(world: MemoryLifecycle) -> None:
    submitted = world.submitted()
    lifecycle, _ = racing(world, lambda: world.review(submitted.claim_id, "complete", "first"))
    decision = Review(decision=ReviewDecision.REJECT, reason="second")
    error = refused(lambda: lifecycle.review(OPERATIONS, submitted.claim_id, decision), Conflict)
    assert error.extra == {"state": "completed"}
    history = world.stored(submitted.claim_id).history
    assert [h.to for h in history][-1] is S.COMPLETED
    assert [h.to for h in history].count(S.REJECTED) == 0


def test_endless_contention_is_a_retryable_503(world: MemoryLifecycle) -> None:
    claim = world.add()

    class AlwaysStale:
        def get_claim(self, claim_id: str) -> Claim | None:
            return world.claims.get_claim(claim_id)

        def apply(self, change: ClaimChange) -> None:
            raise ConcurrentChange("stale")

    lifecycle = Lifecycle(claims=AlwaysStale(), clock=world.clock, sleep=lambda _: None)  # type: ignore[arg-type]
    error = refused(
        lambda: lifecycle.cancel(principal(), claim.claim_id, Cancellation(reason="r")), DependencyUnavailable
    )
    assert error.status == 503
    assert world.stored(claim.claim_id) == claim
