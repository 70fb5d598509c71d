"""Rule 17 on the in-memory fakes: exact expiry by the sweep, reminders once each, crashes and retries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from mci.adapters.memory import MemoryClaimRepository
from mci.domain.claims import ClaimState
from mci.domain.consent_decision import PageStatus
from mci.domain.expiry import Sweep, expire_if_due
from mci.domain.nomination import Nominations
from mci.domain.ports import ClaimChange, ConcurrentChange
from mci.domain.reference import Engagement
from tests.support.claims import new_claim
from tests.support.memory_lifecycle import MemoryLifecycle
from tests.support.reference import CONTOSO, MIGRATE, NORTHWIND, NOW, SECURITY
from tests.support.store_snapshots import assert_all_counters_match

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
DEADLINE = NOW + 30 * DAY  # of every claim made at NOW (30-day consent window)


@pytest.fixture
def world() -> Iterator[MemoryLifecycle]:
    made = MemoryLifecycle()
    yield made
    assert_all_counters_match(made.view)  # rule 11 after every test: each counter equals its active claims


def reminders(world: MemoryLifecycle) -> Counter[str]:
    return Counter(m.tags["claim_id"] for m in world.mailer.sent if m.tags.get("kind") == "consent_reminder")


# ---------------------------------------------------------------- expire_if_due


def test_a_claim_expires_exactly_at_its_deadline() -> None:
    claim = new_claim(CONTOSO, MIGRATE, at=NOW)
    assert expire_if_due(claim, DEADLINE - timedelta(microseconds=1)) is None
    expired = expire_if_due(claim, DEADLINE)
    assert expired is not None
    assert expired.state is ClaimState.EXPIRED
    assert expired.version == claim.version + 1
    assert expired.history[:-1] == claim.history
    last = expired.history[-1]
    assert (last.at, last.from_, last.to) == (DEADLINE, ClaimState.PENDING_CONSENT, ClaimState.EXPIRED)
    assert last.actor.startswith("system")
    assert last.reason == "consent deadline passed"
    much_later = expire_if_due(claim, DEADLINE + 400 * DAY)
    assert much_later is not None
    assert much_later.history[-1].at == DEADLINE  # expired at the deadline, not when the sweep ran


def test_a_consented_claim_expires_at_its_submission_deadline() -> None:
    granted = new_claim(CONTOSO, MIGRATE, at=NOW).model_copy(
        update={"state": ClaimState.CONSENT_GRANTED, "submission_deadline": NOW + 90 * DAY}
    )
    assert expire_if_due(granted, DEADLINE + DAY) is None  # the consent deadline no longer matters
    expired = expire_if_due(granted, NOW + 90 * DAY)
    assert expired is not None
    assert expired.history[-1].reason == "submission deadline passed"
    assert expired.history[-1].at == NOW + 90 * DAY


@pytest.mark.parametrize(
    "state", [s for s in ClaimState if s.is_terminal or s is ClaimState.SUBMITTED], ids=lambda s: s.value
)
def test_submitted_and_ended_claims_never_expire(state: ClaimState) -> None:
    claim = new_claim(CONTOSO, MIGRATE, at=NOW).model_copy(update={"state": state})
    assert expire_if_due(claim, NOW + 1000 * DAY) is None
    assert claim.due_at is None  # and the sweep never looks at them


def test_expiry_drops_the_consent_link(world: MemoryLifecycle) -> None:
    claim = world.add()
    token = world.requested(claim.claim_id)
    world.at(DEADLINE)
    assert world.sweep().expired == 1
    assert world.stored(claim.claim_id).consent_token_hash is None
    assert world.claims.tokens == {}
    assert world.decisions.page(token).status is PageStatus.GONE


# ---------------------------------------------------------------- the sweep expires what is due, and only that


def test_the_sweep_expires_due_claims_and_releases_their_counters(world: MemoryLifecycle) -> None:
    due = world.add(engagement_ids=[SECURITY])
    world.at(NOW + DAY)
    granted = world.granted(engagement_ids=[MIGRATE])  # submission deadline NOW + 91 days
    later = world.add(NORTHWIND, engagement_ids=[MIGRATE])
    assert world.view.counter(MIGRATE, due.customer_key).active_count == 2  # type: ignore[union-attr]
    world.at(DEADLINE)
    report = world.sweep()
    assert (report.examined, report.expired, report.reminded) == (2, 1, 1)  # Northwind's is a day behind
    assert report.expired_ids == [due.claim_id]
    assert reminders(world) == Counter({later.claim_id: 1})
    stored = world.stored(due.claim_id)
    assert stored.state is ClaimState.EXPIRED
    assert [h.to for h in stored.history] == [ClaimState.PENDING_CONSENT, ClaimState.EXPIRED]
    assert world.view.counter(SECURITY, due.customer_key).active_count == 0  # type: ignore[union-attr]
    assert world.view.guard(SECURITY, due.customer_key, CONTOSO) is None
    assert world.stored(granted.claim_id).state is ClaimState.CONSENT_GRANTED
    assert world.stored(later.claim_id).state is ClaimState.PENDING_CONSENT
    world.at(NOW + 31 * DAY)
    assert world.sweep().expired_ids == [later.claim_id]
    world.at(NOW + 91 * DAY)
    assert world.sweep().expired_ids == [granted.claim_id]
    assert world.sweep().examined == 0
    assert_all_counters_match(world.view)


def test_the_sweep_works_through_a_backlog_in_batches(world: MemoryLifecycle) -> None:
    made = [world.numbered(n) for n in range(10)]
    world.at(DEADLINE)
    world.sweeper.batch_size = 3
    assert [world.sweep().expired for _ in range(5)] == [3, 3, 3, 1, 0]
    assert {world.stored(c.claim_id).state for c in made} == {ClaimState.EXPIRED}
    assert all([h.to for h in world.stored(c.claim_id).history].count(ClaimState.EXPIRED) == 1 for c in made)
    assert_all_counters_match(world.view)


# ---------------------------------------------------------------- reminders (rule 17)


def test_each_reminder_is_sent_once_to_the_partner_contact(world: MemoryLifecycle) -> None:
    claim = world.add()
    assert claim.pending_reminders == [7, 1]
    world.at(DEADLINE - 7 * DAY - timedelta(seconds=1))
    assert world.sweep().examined == 0
    world.at(DEADLINE - 7 * DAY)
    report = world.sweep()
    assert (report.reminded, report.expired) == (1, 0)
    [email] = world.mailer.sent
    assert email.to == "sam@contoso-partners.com"
    assert email.subject == "Reminder: consent for Fabrikam migration is due by 27 December 2026"
    assert "Azure Migrate assessment" in email.text
    assert claim.claim_id in email.text
    assert email.tags == {"claim_id": claim.claim_id, "kind": "consent_reminder"}
    stored = world.stored(claim.claim_id)
    assert stored.pending_reminders == [1]
    assert [(r.days_before, r.at) for r in stored.reminders_sent] == [(7, DEADLINE - 7 * DAY)]
    assert stored.history == claim.history  # a reminder is not a state change
    assert world.sweep().examined == 0
    world.at(DEADLINE - 2 * DAY)
    assert world.sweep().reminded == 0
    world.at(DEADLINE - DAY)
    assert world.sweep().reminded == 1
    assert world.sweep().reminded == 0
    world.at(DEADLINE)
    report = world.sweep()
    assert (report.expired, report.reminded) == (1, 0)
    assert reminders(world) == Counter({claim.claim_id: 2})
    assert len(world.mailer.sent) == 2


def test_a_late_sweep_sends_one_reminder_for_all_that_are_due(world: MemoryLifecycle) -> None:
    claim = world.add()
    world.at(DEADLINE - 12 * HOUR)
    assert world.sweep().reminded == 1
    assert reminders(world) == Counter({claim.claim_id: 1})
    stored = world.stored(claim.claim_id)
    assert stored.pending_reminders == []
    assert sorted(r.days_before for r in stored.reminders_sent) == [1, 7]
    world.at(DEADLINE)
    assert world.sweep().expired == 1
    assert len(world.mailer.sent) == 1


def test_reminders_go_out_while_consent_is_requested_but_not_once_it_is_given(world: MemoryLifecycle) -> None:
    requested = world.add(engagement_ids=[SECURITY])
    world.requested(requested.claim_id)
    granted = world.granted(engagement_ids=[MIGRATE])
    world.at(DEADLINE - 7 * DAY)
    assert world.sweep().reminded == 1
    assert reminders(world) == Counter({requested.claim_id: 1})
    assert world.stored(granted.claim_id).reminder_times() == {}


def test_the_reminder_days_are_configurable_and_only_future_ones_are_kept(world: MemoryLifecycle) -> None:
    world.nominations = Nominations(
        reference=world.reference, claims=world.claims, clock=world.clock, reminder_days=(10, 3, 1)
    )
    claim = world.add()
    assert claim.pending_reminders == [10, 3, 1]
    short = data_with_short_window(world)
    late = world.add(engagement_ids=[short])  # a 5-day window: the 10-day reminder would be in the past
    assert late.pending_reminders == [3, 1]
    for days, count in ((3, 1), (1, 2)):
        world.at(NOW + 5 * DAY - days * DAY)
        assert world.sweep().reminded == 1
        assert reminders(world)[late.claim_id] == count
    world.at(NOW + 5 * DAY)
    assert world.sweep().expired_ids == [late.claim_id]
    for days, count in ((10, 1), (3, 2), (1, 3)):
        world.at(DEADLINE - days * DAY)
        assert world.sweep().reminded == 1
        assert reminders(world)[claim.claim_id] == count


def data_with_short_window(world: MemoryLifecycle) -> str:
    """A copy of the Security workshop with a 5-day consent window, open to Contoso's Madrid location."""
    security = world.reference.engagements[SECURITY]
    short = Engagement.model_validate(
        {**security.model_dump(mode="json"), "engagement_id": "e-short", "consent_window_days": 5}
    )
    world.reference.engagements[short.engagement_id] = short
    madrid = world.reference.locations["1234567"]
    world.reference.locations["1234567"] = madrid.model_copy(
        update={"eligible_engagements": [*madrid.eligible_engagements, short.engagement_id]}
    )
    return short.engagement_id


def test_a_throttled_reminder_is_sent_on_the_next_run_and_only_once(world: MemoryLifecycle) -> None:
    claim = world.add()
    other = world.add(engagement_ids=[SECURITY])
    world.at(DEADLINE - 7 * DAY)
    world.mailer.fail_next = 1
    report = world.sweep()
    assert (report.reminded, report.failed) == (1, 1)
    assert len(reminders(world)) == 1
    failed = claim.claim_id if claim.claim_id not in reminders(world) else other.claim_id
    stored = world.stored(failed)
    assert stored.pending_reminders == [7, 1]
    assert stored.reminders_sent == []
    world.mailer.fail_next = 3  # SES keeps throttling for three more runs
    for _ in range(3):
        assert world.sweep().failed == 1
    world.at(DEADLINE - 7 * DAY + HOUR)
    report = world.sweep()
    assert (report.reminded, report.failed) == (1, 0)
    assert reminders(world) == Counter({claim.claim_id: 1, other.claim_id: 1})
    assert world.sweep().examined == 0
    assert world.stored(failed).pending_reminders == [1]
    assert_all_counters_match(world.view)


def test_a_claim_changed_under_the_sweep_is_skipped_then_reminded_once(world: MemoryLifecycle) -> None:
    claim = world.add()
    world.at(DEADLINE - 7 * DAY)
    changed = ChangesAfterReading(world.claims, lambda: world.requested(claim.claim_id))
    report = Sweep(claims=world.claims, due=changed, mailer=world.mailer, clock=world.clock).run()
    assert (report.examined, report.skipped, report.reminded) == (1, 1, 0)
    assert world.stored(claim.claim_id).state is ClaimState.CONSENT_REQUESTED
    assert world.sweep().reminded == 1
    assert world.sweep().examined == 0
    assert reminders(world) == Counter({claim.claim_id: 1})


class ChangesAfterReading:
    """The due index as read, then a partner's write before the sweep writes (a stale read)."""

    def __init__(self, inner: MemoryClaimRepository, change: Any) -> None:
        self.inner = inner
        self.change = change

    def due_claims(self, now: Any, limit: int) -> Any:
        found = self.inner.due_claims(now, limit)
        self.change()
        return found


# ---------------------------------------------------------------- crash, then run again


class Crash(Exception):
    pass


class CrashingClaims:
    """The claim store, crashing at the apply after ``healthy`` successful ones, before or after its write."""

    def __init__(self, inner: MemoryClaimRepository, healthy: int, *, after_write: bool) -> None:
        self.inner = inner
        self.healthy = healthy
        self.after_write = after_write
        self.applied = 0

    def apply(self, change: ClaimChange) -> None:
        if self.applied == self.healthy:
            if self.after_write:
                self.inner.apply(change)
            raise Crash
        self.inner.apply(change)
        self.applied += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def crash_world() -> MemoryLifecycle:
    """Thirteen claims made over ten days; at DEADLINE + 5 days ten are due to expire and three to be reminded."""
    world = MemoryLifecycle()
    for n in range(6):
        claim = world.numbered(n)
        if n % 2:
            world.requested(claim.claim_id)  # with a consent link, which expiry removes
    world.at(NOW + 5 * DAY)
    for n in range(6, 9):
        world.numbered(n, SECURITY)
    world.numbered(0, MIGRATE, NORTHWIND)  # shares a counter with Contoso's claim for customer 0
    world.at(NOW + 10 * DAY)
    for n in range(9, 12):
        world.numbered(n)
    world.at(DEADLINE + 5 * DAY)
    return world


def store_state(claims: MemoryClaimRepository) -> dict[str, Any]:
    return {
        "claims": {i: c.model_dump(exclude={"version"}) for i, c in claims.claims.items()},
        "counters": {k: set(c.holders) for k, c in claims.counters.items()},
        "guards": dict(claims.guards),
        "tokens": set(claims.tokens),
    }


@pytest.mark.parametrize("after_write", [False, True], ids=["before a write", "after a write"])
def test_a_crashed_sweep_run_again_ends_where_one_clean_run_ends(after_write: bool) -> None:
    clean = crash_world()
    report = clean.sweep()
    applies = report.expired + 2 * report.reminded  # a reminder: its mark with it in the outbox, then its record
    assert (report.expired, report.reminded) == (10, 3)
    expected = store_state(clean.claims)
    for healthy in range(applies):
        world = crash_world()
        crashing = CrashingClaims(world.claims, healthy, after_write=after_write)
        with pytest.raises(Crash):
            Sweep(claims=crashing, due=world.claims, mailer=world.mailer, clock=world.clock).run()  # type: ignore[arg-type]
        world.sweep()
        assert world.sweep().examined == 0
        assert store_state(world.claims) == expected, healthy
        for claim in world.claims.claims.values():
            assert [h.to for h in claim.history].count(ClaimState.EXPIRED) <= 1
        sent = reminders(world)
        # Issue 12, item 13: never lost (the mark puts the reminder in the outbox, in the same write), and twice
        # only for the one reminder the crash cut off from its record (sent, not yet out of the outbox): the
        # window of a lost SES answer, which no sender can close.
        assert set(sent) == set(reminders(clean)), healthy
        assert set(sent.values()) <= {1, 2}, (healthy, sent)
        assert sum(sent.values()) <= sum(reminders(clean).values()) + 1, (healthy, sent)
        if after_write:
            assert sent == reminders(clean), healthy  # a mark written, then the crash: the next run sends it once
        assert_all_counters_match(world.view)


def test_a_store_that_keeps_conflicting_only_skips(world: MemoryLifecycle) -> None:
    claim = world.add()
    world.at(DEADLINE)

    class Conflicting:
        def apply(self, change: ClaimChange) -> None:
            raise ConcurrentChange("always")

    report = Sweep(claims=Conflicting(), due=world.claims, mailer=world.mailer, clock=world.clock).run()  # type: ignore[arg-type]
    assert (report.examined, report.skipped, report.expired) == (1, 1, 0)
    assert world.stored(claim.claim_id).state is ClaimState.PENDING_CONSENT
    assert world.sweep().expired == 1


def test_the_report_says_how_late_the_run_came_to_its_most_overdue_claim(world: MemoryLifecycle) -> None:
    world.add()
    world.at(DEADLINE - 7 * DAY + 3 * HOUR)  # the 7-day reminder was due three hours ago
    assert world.sweep().lag_seconds == 3 * 3600
    assert world.sweep().lag_seconds == 0  # nothing due any more
