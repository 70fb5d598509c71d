"""The email outbox: no state change whose email is lost, no email without its state change (issue 6, item 4)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from mci.domain.claims import CONSENT_EMAIL_RETRY, Claim, ClaimState, Decision, EmailStatus, PendingNotice, ReminderSent
from mci.domain.consent_decision import PageStatus
from mci.domain.consent_token import token_hash
from mci.domain.errors import DependencyUnavailable, EmailRejected, SendingThrottled
from mci.domain.expiry import Sweep
from mci.domain.ports import ClaimChange, EmailMessage
from tests.support.consent import FIRST_REQUEST, MemoryConsent, token_in
from tests.support.reference import NORTHWIND, SECURITY


def sweep_of(world: MemoryConsent) -> Sweep:
    return Sweep(claims=world.claims, due=world.claims, mailer=world.mailer, clock=world.clock, outbox=world.outbox)


@pytest.mark.parametrize(("decision", "kind"), [("accept", "consent_accepted"), ("decline", "consent_declined")])
def test_a_partner_notice_that_fails_stays_in_the_outbox_and_the_sweep_sends_it_once(decision: str, kind: str) -> None:
    world = MemoryConsent()
    claim = world.add_claim()
    token = world.requested(claim.claim_id)
    world.mailer.fail_next = 1

    page = world.decisions.decide(token, Decision(decision))
    assert page.status is PageStatus.OPEN  # the customer's answer stands
    stored = world.stored(claim.claim_id)
    assert stored.state in {ClaimState.CONSENT_GRANTED, ClaimState.CONSENT_DECLINED}
    assert [n.kind for n in stored.pending_notices] == [kind]
    assert stored.due_at is not None
    assert stored.due_at <= world.clock.now() + timedelta(minutes=2)
    sent_before = len(world.mailer.sent)

    world.at(world.clock.now() + timedelta(minutes=2))
    first = sweep_of(world).run()
    again = sweep_of(world).run()

    notices = [m for m in world.mailer.sent[sent_before:] if m.tags.get("kind") == kind]
    assert len(notices) == 1
    assert notices[0].to == claim.partner_contact.email
    assert (first.notified, again.notified) == (1, 0)
    assert world.stored(claim.claim_id).pending_notices == []


def test_a_notice_sent_at_once_leaves_nothing_pending() -> None:
    world = MemoryConsent()
    claim = world.add_claim()
    token = world.requested(claim.claim_id)

    world.decisions.decide(token, Decision.ACCEPT)
    stored = world.stored(claim.claim_id)
    assert stored.pending_notices == []
    assert [m.tags["kind"] for m in world.mailer.sent] == ["consent_request", "consent_accepted"]


def test_a_consent_email_that_never_reached_ses_is_redelivered_by_the_sweep_with_a_new_link() -> None:
    world = MemoryConsent()
    claim = world.add_claim()
    world.mailer.fail_next = 1
    with pytest.raises(DependencyUnavailable):
        world.request(claim.claim_id, **FIRST_REQUEST)
    stuck = world.stored(claim.claim_id)
    assert stuck.state is ClaimState.CONSENT_REQUESTED
    assert stuck.consent_email is not None
    assert stuck.consent_email.status is EmailStatus.PENDING
    assert world.mailer.sent == []

    world.at(world.clock.now() + CONSENT_EMAIL_RETRY)
    report = sweep_of(world).run()
    sweep_of(world).run()

    assert report.redelivered == 1
    assert len(world.mailer.sent) == 1  # exactly one email, however many sweeps
    delivered = world.stored(claim.claim_id)
    assert delivered.consent_email is not None
    assert delivered.consent_email.status is EmailStatus.SENT
    assert delivered.consent_requests.count == 1  # a redelivery is not a resend
    assert world.decisions.page(token_in(world.mailer.sent[0].text)).status is PageStatus.OPEN


def test_the_sweep_does_not_redeliver_while_the_client_may_still_retry() -> None:
    world = MemoryConsent()
    claim = world.add_claim()
    world.mailer.fail_next = 1
    with pytest.raises(DependencyUnavailable):
        world.request(claim.claim_id, **FIRST_REQUEST)
    world.at(world.clock.now() + CONSENT_EMAIL_RETRY - timedelta(seconds=1))
    assert sweep_of(world).run().redelivered == 0
    assert world.mailer.sent == []


# ---------------------------------------------------------------- rule 29: poison items (issue 17, item 1)

DAY = timedelta(days=1)
PARTNER = "sam@contoso-partners.com"


def test_a_sweep_goes_on_past_a_reminder_ses_refuses_for_good_and_records_it_on_the_claim() -> None:
    world = MemoryConsent()
    expiring = world.add_claim()
    world.at(world.clock.now() + 7 * DAY)
    refused = world.add_claim(engagement_ids=[SECURITY])
    reminded = world.add_claim(NORTHWIND)
    world.mailer.rejected = {PARTNER}
    world.at(world.clock.now() + 23 * DAY)  # the first claim's deadline; the 7-day reminders of the others

    report = sweep_of(world).run()

    assert (report.examined, report.expired, report.reminded, report.poisoned) == (3, 1, 1, 1)
    assert report.poison == [{"claim_id": refused.claim_id, "kind": "consent_reminder", "reason": "email_rejected"}]
    assert world.stored(expiring.claim_id).state is ClaimState.EXPIRED
    assert [(m.tags["claim_id"], m.tags["kind"]) for m in world.mailer.sent] == [
        (reminded.claim_id, "consent_reminder")
    ]
    stored = world.stored(refused.claim_id)
    assert [(f.kind, f.to, f.reason) for f in stored.email_failures] == [
        ("consent_reminder", PARTNER, "email_rejected")
    ]
    assert stored.pending_notices == []  # never retried
    assert [r.days_before for r in stored.reminders_sent] == [7]
    again = sweep_of(world).run()
    assert (again.examined, again.poisoned) == (0, 0)


def test_a_notice_ses_keeps_failing_is_given_up_after_the_last_attempt_and_reported_once() -> None:
    world = MemoryConsent()
    claim = world.add_claim()
    token = world.requested(claim.claim_id)
    world.mailer.fail_next = 100  # an operator problem: SES refuses every send
    world.decisions.decide(token, Decision.ACCEPT)
    sweep = Sweep(
        claims=world.claims,
        due=world.claims,
        mailer=world.mailer,
        clock=world.clock,
        outbox=dataclasses.replace(world.outbox, max_attempts=3),
    )
    reports = []
    for _ in range(5):
        world.at(world.clock.now() + timedelta(hours=2))
        reports.append(sweep.run())

    assert [r.poisoned for r in reports] == [0, 1, 0, 0, 0]  # attempts 2 and 3 in the sweep; then nothing due
    assert reports[1].poison == [{"claim_id": claim.claim_id, "kind": "consent_accepted", "reason": "gave_up"}]
    stored = world.stored(claim.claim_id)
    assert stored.pending_notices == []
    assert [(f.kind, f.reason, f.attempts) for f in stored.email_failures] == [("consent_accepted", "gave_up", 3)]
    assert stored.state is ClaimState.CONSENT_GRANTED  # the customer's answer stands


class Crash(Exception):
    """A Lambda dying mid-way: the sweep's between a reminder's mark and its send, a request's right after SES took
    its email (before the record)."""


def test_a_reminder_marked_before_a_crash_is_sent_once_by_the_next_run() -> None:
    """Issue 12, item 13: the sweep marked, then sent; a crash in between lost the reminder."""
    world = MemoryConsent()
    claim = world.add_claim()
    world.at(claim.consent_deadline - 7 * DAY)
    send = world.mailer.send

    def crash(message: Any) -> str:
        raise Crash

    world.mailer.send = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        sweep_of(world).run()
    marked = world.stored(claim.claim_id)
    assert [r.days_before for r in marked.reminders_sent] == [7]
    assert [n.kind for n in marked.pending_notices] == ["consent_reminder"]

    world.mailer.send = send  # type: ignore[method-assign]
    report = sweep_of(world).run()
    assert report.notified == 1
    assert sweep_of(world).run().examined == 0
    assert [m.tags["kind"] for m in world.mailer.sent] == ["consent_reminder"]
    assert world.mailer.sent[0].to == PARTNER
    assert "7" in world.mailer.sent[0].subject + world.mailer.sent[0].text
    assert world.stored(claim.claim_id).pending_notices == []


def test_a_reminder_queued_behind_a_throttled_notice_on_a_decided_claim_is_dropped_not_put_back() -> None:
    """A reminder has no point once consent is answered: the outbox drops it when it reaches it. When SES throttled
    a notice ahead of it, the reminder was counted among the waiting ones and put back among the claim's pending
    reminders (its mark taken out of reminders_sent), on a claim that will never be reminded."""
    world = MemoryConsent()
    claim = world.add_claim()
    token = world.requested(claim.claim_id)
    world.mailer.throttle_after = 0  # SES at its sending rate: the partner's notice waits in the outbox
    world.decisions.decide(token, Decision.ACCEPT)
    decided = world.stored(claim.claim_id)
    marked_at = decided.updated_at
    reminder = PendingNotice(kind="consent_reminder", engagement_name="Azure Migrate", since=marked_at, days_before=7)
    queued = decided.model_copy(
        update={
            "pending_notices": [*decided.pending_notices, reminder],
            "reminders_sent": [*decided.reminders_sent, ReminderSent(days_before=7, at=marked_at)],
            "pending_reminders": [d for d in decided.pending_reminders if d != 7],
            "version": decided.version + 1,
        }
    )
    world.claims.apply(ClaimChange(before=decided, after=queued))
    throttled = world.mailer.throttled

    after = world.outbox.deliver_notices(queued)

    assert world.mailer.throttled == throttled + 1  # the notice ahead of it was throttled; nothing was sent
    stored = world.stored(claim.claim_id)
    assert after == stored
    assert [n.kind for n in stored.pending_notices] == ["consent_accepted"]  # the notice waits, with no attempt spent
    assert stored.pending_notices[0].attempts == 0
    assert 7 not in stored.pending_reminders
    assert stored.reminders_sent == queued.reminders_sent
    assert stored.reminder_times() == {}


class ContendedThrottle:
    """SES throttling every send while another writer changes the claim at that very moment (a partner's request
    read, SES feedback on an earlier email, another sweep): the claim's version moves under the outbox."""

    def __init__(self, claims: Any) -> None:
        self.claims = claims
        self.calls = 0

    def send(self, message: EmailMessage) -> str:
        self.calls += 1
        stored = self.claims.get_claim(message.tags["claim_id"])
        self.claims.apply(ClaimChange(before=stored, after=stored.model_copy(update={"version": stored.version + 1})))
        raise SendingThrottled("Maximum sending rate exceeded.")


def test_a_throttled_redelivery_spends_no_attempt_even_when_the_claim_changes_meanwhile() -> None:
    """The attempt a throttled redelivery had counted was given back in a separate best-effort write, dropped on a
    concurrent change: after enough throttled runs the email was given up (gave_up) though SES never refused it."""
    world = MemoryConsent()
    claim = world.add_claim()
    world.mailer.fail_next = 1  # SES unavailable at the request: the consent email waits in the outbox
    with pytest.raises(DependencyUnavailable):
        world.request(claim.claim_id, **FIRST_REQUEST)
    stuck = world.stored(claim.claim_id).consent_email
    assert stuck is not None
    contended = ContendedThrottle(world.claims)
    sweep = Sweep(claims=world.claims, due=world.claims, mailer=contended, clock=world.clock, outbox=world.outbox)

    for run in range(1, 12):  # more runs than the outbox's max attempts (8)
        world.at(world.clock.now() + CONSENT_EMAIL_RETRY)
        report = sweep.run()
        assert (report.redelivered, report.failed, report.poisoned, report.deferred) == (0, 0, 0, 1), run
        waiting = world.stored(claim.claim_id).consent_email
        assert waiting is not None
        assert (waiting.status, waiting.attempts) == (EmailStatus.PENDING, stuck.attempts), run

    assert contended.calls == 11
    assert world.stored(claim.claim_id).email_failures == []
    world.at(world.clock.now() + CONSENT_EMAIL_RETRY)
    assert sweep_of(world).run().redelivered == 1
    [email] = [m for m in world.mailer.sent if m.tags.get("kind") == "consent_request"]
    assert world.decisions.page(token_in(email.text)).status is PageStatus.OPEN


class DiesAfterSending:
    """SES takes the next email, then the function dies: the claim keeps the email pending, its link unrecorded."""

    def __init__(self, mailer: Any) -> None:
        self.mailer = mailer
        self.armed = True

    def send(self, message: EmailMessage) -> str:
        message_id: str = self.mailer.send(message)
        if self.armed:
            self.armed = False
            raise Crash(message_id)
        return message_id


def sent_then_died(world: MemoryConsent) -> Claim:
    """A claim whose first consent email SES took while the request died before recording it (left pending)."""
    claim = world.add_claim()
    world.outbox.mailer = DiesAfterSending(world.mailer)
    with pytest.raises(Crash):
        world.request(claim.claim_id, **FIRST_REQUEST)
    return claim


def emailed_tokens(world: MemoryConsent) -> list[str]:
    return [token_in(m.text) for m in world.mailer.sent if m.tags.get("kind") == "consent_request"]


def test_a_redelivery_after_an_email_ses_may_have_taken_keeps_its_link_live() -> None:
    world = MemoryConsent()
    claim = sent_then_died(world)
    assert world.stored(claim.claim_id).consent_email.status is EmailStatus.PENDING  # type: ignore[union-attr]

    world.request(claim.claim_id, **FIRST_REQUEST)  # the partner tries again: a redelivery, a new link

    first, second = emailed_tokens(world)
    assert [world.decisions.page(t).status for t in (first, second)] == [PageStatus.OPEN, PageStatus.OPEN]
    assert world.decisions.decide(first, Decision.ACCEPT).status is PageStatus.OPEN
    assert world.stored(claim.claim_id).state is ClaimState.CONSENT_GRANTED
    assert world.claims.tokens == {}  # the decision ended every link
    assert world.decisions.decide(second, Decision.DECLINE).status is PageStatus.GONE


def test_a_redelivery_to_a_corrected_address_keeps_no_earlier_link() -> None:
    """The earlier email went to an address the partner corrected: its link must not take the customer's decision."""
    world = MemoryConsent()
    claim = sent_then_died(world)
    contact = {"name": "Ana García", "email": "ana.garcia@fabrikam.com", "language": "es"}

    world.request(claim.claim_id, **FIRST_REQUEST, customer_contact=contact)

    first, second = emailed_tokens(world)
    assert world.decisions.page(first).status is PageStatus.GONE
    assert world.decisions.page(second).status is PageStatus.OPEN
    assert set(world.claims.tokens) == {token_hash(second)}


def test_a_resend_replaces_every_kept_link() -> None:
    world = MemoryConsent()
    claim = sent_then_died(world)
    world.request(claim.claim_id, **FIRST_REQUEST)
    world.at(world.clock.now() + timedelta(hours=1))

    world.request(claim.claim_id)  # rule 14: a resend

    *earlier, latest = emailed_tokens(world)
    assert len(earlier) == 2
    assert [world.decisions.page(t).status for t in earlier] == [PageStatus.GONE, PageStatus.GONE]
    assert set(world.claims.tokens) == {token_hash(latest)}


class RefusesRecordingRejections:
    """DynamoDB refusing (throttled throughout) every write that records a consent email as rejected; every other
    write goes through."""

    def __init__(self, claims: Any) -> None:
        self.claims = claims
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.claims, name)

    def apply(self, change: ClaimChange) -> Any:
        email = change.after.consent_email if change.after else None
        if email is not None and email.status is EmailStatus.REJECTED:
            self.refused += 1
            raise DependencyUnavailable("DynamoDB is busy; retry shortly.", retry_after_seconds=1)
        return self.claims.apply(change)


def test_a_rejected_consent_email_whose_record_fails_has_its_link_dropped_not_kept() -> None:
    """SES refused the consent email for good and recording that failed throughout: the outbox answered as if it
    were recorded, the stored claim kept the email pending with its link not marked unsent, so the sweep's
    redelivery kept a link no email ever carried live beside its new one."""
    world = MemoryConsent()
    claim = world.add_claim()
    refusing = RefusesRecordingRejections(world.claims)
    world.outbox.claims = refusing
    world.mailer.rejected = {claim.customer_contact.email}

    with pytest.raises(EmailRejected):
        world.request(claim.claim_id, **FIRST_REQUEST)

    assert refusing.refused > 0
    stored = world.stored(claim.claim_id)
    assert stored.consent_email is not None
    assert stored.consent_email.status is EmailStatus.PENDING  # the rejection is not recorded...
    assert stored.unsent_token_hash == stored.consent_token_hash  # ...but SES took nothing for its link
    world.outbox.claims = world.claims
    world.mailer.rejected = set()
    world.at(world.clock.now() + CONSENT_EMAIL_RETRY)
    assert sweep_of(world).run().redelivered == 1
    after = world.stored(claim.claim_id)
    assert stored.consent_token_hash not in after.live_token_hashes
    assert set(world.claims.tokens) == after.live_token_hashes
