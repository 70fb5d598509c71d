"""Business metrics (mci.domain.metrics): each committed business event counted exactly once, on the in-memory
fakes; a conflict retry, a refused or failed write, and a second sweep run count nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from mci.adapters.memory import MemoryClaimRepository, MemoryMetrics
from mci.domain.claim_queries import record_delivery_problem
from mci.domain.claims import EmailStatus
from mci.domain.errors import Conflict
from mci.domain.metrics import METRICS, Count, change_counts
from mci.domain.ports import ClaimChange, ConcurrentChange, NewClaims
from mci.domain.retry import RetryPolicy
from tests.support.memory_lifecycle import MemoryLifecycle
from tests.support.reference import NORTHWIND, NOW, SECURITY

DAY = timedelta(days=1)
DEADLINE = NOW + 30 * DAY  # of every claim made at NOW (30-day consent window)
FIXED = (("PaymentType", "fixed"),)


@pytest.fixture
def metrics() -> MemoryMetrics:
    return MemoryMetrics()


@pytest.fixture
def world(metrics: MemoryMetrics) -> Iterator[MemoryLifecycle]:
    made = MemoryLifecycle(claims=MemoryClaimRepository(metrics))
    made.nominations.metrics = metrics
    yield made
    assert_low_cardinality(metrics.counts)


def assert_low_cardinality(counts: list[Count]) -> None:
    """Every metric is a documented one with its documented dimensions: never a partner, claim or customer."""
    for count in counts:
        assert count.name in METRICS
        assert tuple(name for name, _ in count.dimensions) == METRICS[count.name]
        assert not any(word in name.lower() for name, _ in count.dimensions for word in ("partner", "claim", "cust"))


def totals(metrics: MemoryMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    return metrics.totals()


def test_the_funnel_counts_each_step_once(world: MemoryLifecycle, metrics: MemoryMetrics) -> None:
    claim = world.submitted()
    world.review(claim.claim_id, "complete")
    assert totals(metrics) == {
        ("CustomersAdded", FIXED): 1,
        ("ConsentsRequested", ()): 1,
        ("ReferralsCreated", ()): 1,
        ("ConsentEmailsSent", ()): 1,
        ("ConsentsGranted", ()): 1,
        ("ReferralsUpgradedToCoSell", ()): 1,  # the demo customer allows co-sell
        ("ClaimsSubmitted", ()): 1,
        ("ClaimsCompleted", ()): 1,
    }


def test_declines_cancellations_rejections_and_resends(world: MemoryLifecycle, metrics: MemoryMetrics) -> None:
    world.declined()
    cancelled = world.add(engagement_ids=[SECURITY])
    world.cancel(cancelled.claim_id)
    rejected = world.submitted(partner_id=NORTHWIND)
    world.review(rejected.claim_id, "reject")
    found = totals(metrics)
    assert found[("ConsentsDeclined", ())] == 1
    assert found[("ClaimsCancelled", ())] == 1
    assert found[("ClaimsRejected", ())] == 1
    assert found[("ConsentsRequested", ())] == 2  # the declined claim's and the rejected one's


def test_a_resend_is_counted_as_resent_not_as_a_new_request(world: MemoryLifecycle, metrics: MemoryMetrics) -> None:
    claim = world.add()
    world.requested(claim.claim_id)
    world.at(NOW + DAY)
    world.requested(claim.claim_id, disclaimer_accepted=True)
    found = totals(metrics)
    assert (found[("ConsentEmailsSent", ())], found[("ConsentEmailsResent", ())]) == (1, 1)
    assert found[("ConsentsRequested", ())] == 1


def test_a_refusal_counts_its_reason_and_no_customer(world: MemoryLifecycle, metrics: MemoryMetrics) -> None:
    world.add()
    with pytest.raises(Conflict):
        world.add()
    assert totals(metrics) == {
        ("CustomersAdded", FIXED): 1,
        ("EligibilityRefusals", (("ReasonCode", "duplicate_claim"),)): 1,
    }


class ConflictsOnce:
    """A store whose next write loses a race once (ConcurrentChange), as a concurrent request makes it."""

    def __init__(self, inner: MemoryClaimRepository) -> None:
        self.inner = inner
        self.conflicts = 0

    def create(self, new: NewClaims) -> None:
        self._maybe_conflict()
        self.inner.create(new)

    def apply(self, change: ClaimChange) -> None:
        self._maybe_conflict()
        self.inner.apply(change)

    def _maybe_conflict(self) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise ConcurrentChange("someone else wrote first")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_conflict_retry_counts_the_committed_change_once(world: MemoryLifecycle, metrics: MemoryMetrics) -> None:
    store = ConflictsOnce(world.claims)
    world.nominations.claims = store  # type: ignore[assignment]
    world.lifecycle.claims = store  # type: ignore[assignment]
    world.nominations.retry = world.lifecycle.retry = RetryPolicy(attempts=3)
    store.conflicts = 1
    claim = world.granted()
    store.conflicts = 1
    world.submit(claim.claim_id)
    found = totals(metrics)
    assert (found[("CustomersAdded", FIXED)], found[("ClaimsSubmitted", ())]) == (1, 1)


def test_a_write_that_never_commits_counts_nothing(world: MemoryLifecycle, metrics: MemoryMetrics) -> None:
    store = ConflictsOnce(world.claims)
    world.nominations.claims = store  # type: ignore[assignment]
    world.nominations.retry = RetryPolicy(attempts=2)
    store.conflicts = 2
    with pytest.raises(Exception, match="simultaneous"):
        world.add()
    assert metrics.counts == []


def test_expiry_counts_by_the_state_it_expired_from_and_a_second_sweep_counts_nothing(
    world: MemoryLifecycle, metrics: MemoryMetrics
) -> None:
    world.add()
    requested = world.add(engagement_ids=[SECURITY])
    world.requested(requested.claim_id)
    world.at(DEADLINE)
    assert world.sweep().expired == 2
    before = totals(metrics)
    assert before[("ClaimsExpired", (("FromState", "pending_consent"),))] == 1
    assert before[("ClaimsExpired", (("FromState", "consent_requested"),))] == 1
    world.sweep()  # the schedule fires again (or the same run is redelivered): nothing is due any more
    assert totals(metrics) == before


def test_reminders_count_when_sent_and_a_throttled_one_when_it_finally_goes(
    world: MemoryLifecycle, metrics: MemoryMetrics
) -> None:
    world.add()
    world.at(DEADLINE - 7 * DAY)
    world.mailer.fail_next = 1
    assert world.sweep().failed == 1
    assert ("RemindersSent", ()) not in totals(metrics)
    world.at(DEADLINE - 7 * DAY + timedelta(hours=1))
    assert world.sweep().reminded == 1
    world.sweep()
    assert totals(metrics)[("RemindersSent", ())] == 1


def test_a_bounce_and_a_complaint_count_once_each_however_often_ses_reports_them(
    world: MemoryLifecycle, metrics: MemoryMetrics
) -> None:
    claim = world.add()
    world.requested(claim.claim_id)
    message_id = world.stored(claim.claim_id).consent_email.message_id  # type: ignore[union-attr]
    assert message_id is not None
    retry = RetryPolicy(attempts=2)
    for _ in range(2):  # EventBridge delivers at least once
        record_delivery_problem(world.claims, claim.claim_id, message_id, EmailStatus.BOUNCED, NOW, retry=retry)
    record_delivery_problem(world.claims, claim.claim_id, message_id, EmailStatus.COMPLAINED, NOW, retry=retry)
    found = totals(metrics)
    assert (found[("EmailBounces", ())], found[("EmailComplaints", ())]) == (1, 1)


def test_a_change_that_moves_nothing_counts_nothing(world: MemoryLifecycle) -> None:
    claim = world.add()
    touched = claim.model_copy(update={"version": claim.version + 1})
    assert change_counts(ClaimChange(before=claim, after=touched)) == []


def test_a_metric_powertools_refuses_never_fails_the_committed_change(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change has committed when it is counted: a refused metric (here 40 dimensions, past EMF's limit) is
    logged and passed over, and the next one is still printed."""
    from mci.adapters import powertools_metrics

    warned: list[tuple[str, Any]] = []

    class Recorder:
        def warning(self, message: str, extra: Any = None) -> None:
            warned.append((message, extra))

    monkeypatch.setattr(powertools_metrics, "logger", Recorder())
    refused = Count("ClaimsSubmitted", tuple((f"D{i}", "v") for i in range(40)))
    powertools_metrics.PowertoolsMetrics("MciCustomers", "mci-customers", "dev").count(
        [refused, Count("ClaimsCompleted")]
    )
    assert warned == [("metric not recorded", {"metric": "ClaimsSubmitted"})]
    assert '"ClaimsCompleted"' in capsys.readouterr().out
