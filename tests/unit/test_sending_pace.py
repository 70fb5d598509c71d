"""The sweep sends at SES's pace (docs/scaling.md): spaced at the configured rate on a fake timer (no test sleeps),
and a throttled send stops the run's sending, leaving the rest queued for the next run: never lost, never sent
twice, never a failure."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mci.adapters.ses_mailer import SesMailer
from mci.domain.claims import CONSENT_EMAIL_RETRY, Decision, EmailStatus
from mci.domain.consent_decision import PageStatus
from mci.domain.errors import DependencyUnavailable, SendingThrottled
from mci.domain.ports import EmailMessage
from mci.domain.sending import PacedMailer
from tests.support.consent import FIRST_REQUEST, token_in
from tests.support.memory_lifecycle import MemoryLifecycle
from tests.support.reference import NOW
from tests.support.timers import FakeTimer

DAY = timedelta(days=1)
DEADLINE = NOW + 30 * DAY
MESSAGE = EmailMessage(to="sam@contoso-partners.com", subject="s", text="t", html="<p>t</p>", tags={})


class Recording:
    """A mailer that notes the fake time of each send and throttles the sends numbered in ``throttle``."""

    def __init__(self, timer: FakeTimer, throttle: set[int] | None = None) -> None:
        self.timer = timer
        self.throttle = throttle or set()
        self.calls: list[float] = []

    def send(self, message: EmailMessage) -> str:
        self.calls.append(self.timer.monotonic())
        if len(self.calls) in self.throttle:
            raise SendingThrottled("Maximum sending rate exceeded")
        return f"m-{len(self.calls)}"


def test_sends_are_spaced_at_the_rate_without_waiting_for_the_first() -> None:
    timer = FakeTimer()
    inner = Recording(timer)
    paced = PacedMailer(inner, per_second=4, monotonic=timer.monotonic, sleep=timer.sleep)
    for _ in range(5):
        paced.send(MESSAGE)
    assert inner.calls == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert timer.slept == [0.25] * 4


def test_time_already_spent_between_sends_is_not_waited_again() -> None:
    timer = FakeTimer()
    inner = Recording(timer)
    paced = PacedMailer(inner, per_second=2, monotonic=timer.monotonic, sleep=timer.sleep)
    paced.send(MESSAGE)
    timer.now += 0.2  # the sweep's own writes between two sends
    paced.send(MESSAGE)
    timer.now += 1.0
    paced.send(MESSAGE)
    assert inner.calls == [0.0, 0.5, 1.5]
    assert timer.slept == pytest.approx([0.3])


def test_after_a_throttle_no_send_of_the_run_reaches_ses() -> None:
    timer = FakeTimer()
    inner = Recording(timer, throttle={2})
    paced = PacedMailer(inner, per_second=10, monotonic=timer.monotonic, sleep=timer.sleep)
    paced.send(MESSAGE)
    for _ in range(3):
        with pytest.raises(SendingThrottled):
            paced.send(MESSAGE)
    assert len(inner.calls) == 2
    assert paced.throttled


def test_a_send_that_would_start_within_the_margin_of_the_timeout_is_refused_without_waiting() -> None:
    """Lambda ending a run between SES taking an email and its outbox write would send it again next run: a send
    that would start (after its wait) with less than the margin left is refused as a throttle is, as is every next."""
    timer = FakeTimer()
    inner = Recording(timer)
    remaining = 20.0  # seconds of the invocation left at the run's start
    paced = PacedMailer(
        inner, per_second=0.5, monotonic=timer.monotonic, sleep=timer.sleep, remaining=lambda: remaining - timer.now
    )
    for _ in range(3):
        paced.send(MESSAGE)
    for _ in range(2):
        with pytest.raises(SendingThrottled):
            paced.send(MESSAGE)  # it would start at 6 s, 14 s before the end: within the 15 s margin
    assert inner.calls == [0.0, 2.0, 4.0]
    assert timer.slept == [2.0, 2.0]  # the refused send did not wait first
    assert paced.throttled


def test_without_a_time_limit_a_run_sends_however_long_it_takes() -> None:
    timer = FakeTimer()
    inner = Recording(timer)
    paced = PacedMailer(inner, per_second=0.01, monotonic=timer.monotonic, sleep=timer.sleep)  # a run by hand
    for _ in range(5):
        paced.send(MESSAGE)
    assert inner.calls[-1] == 400.0


@pytest.mark.parametrize("code", ["TooManyRequestsException", "Throttling"])
def test_ses_throttling_is_sending_throttled_not_a_failure_of_the_message(code: str) -> None:
    """SES v2 answers TooManyRequestsException (429) for "Maximum sending rate exceeded"; v1 says Throttling."""

    class Throttling:
        def send_email(self, **_: Any) -> dict[str, str]:
            error = {"Code": code, "Message": "Maximum sending rate exceeded."}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 429}}, "SendEmail")

    with pytest.raises(SendingThrottled) as raised:
        SesMailer(Throttling, "noreply@example.com").send(MESSAGE)  # type: ignore[arg-type]
    assert isinstance(raised.value, DependencyUnavailable)  # an API caller still gets 503 with Retry-After
    assert raised.value.status == 503


@pytest.fixture
def world() -> MemoryLifecycle:
    return MemoryLifecycle()


def reminders(world: MemoryLifecycle) -> Counter[str]:
    return Counter(m.tags["claim_id"] for m in world.mailer.sent if m.tags.get("kind") == "consent_reminder")


def test_the_sweep_paces_its_reminders_at_the_configured_rate(world: MemoryLifecycle) -> None:
    made = [world.numbered(n) for n in range(6)]
    world.at(DEADLINE - 7 * DAY)
    world.sweeper.send_rate = 3.0
    report = world.sweep()
    assert report.reminded == 6
    assert world.timer.slept == pytest.approx([1 / 3] * 5)  # 6 sends in 5/3 s: 3 a second, never faster
    assert set(reminders(world)) == {c.claim_id for c in made}


def test_a_throttled_sweep_stops_sending_and_the_next_run_sends_the_rest_once(world: MemoryLifecycle) -> None:
    made = [world.numbered(n) for n in range(5)]
    world.at(DEADLINE - 7 * DAY)
    world.mailer.throttle_after = 2  # SES takes two, then answers "Maximum sending rate exceeded"
    report = world.sweep()
    assert (report.reminded, report.failed, report.poisoned, report.deferred) == (2, 0, 0, 3)
    assert world.mailer.throttled == 1  # one refused call: the run sent nothing more
    for claim in made:
        stored = world.stored(claim.claim_id)
        assert stored.email_failures == []
        assert all(n.attempts == 0 for n in stored.pending_notices)  # a throttle is not an attempt (rule 29)

    world.mailer.throttle_after = None
    world.at(DEADLINE - 7 * DAY + timedelta(minutes=5))
    again = world.sweep()
    assert (again.failed, again.deferred) == (0, 0)
    assert again.reminded + again.notified == 3
    assert reminders(world) == Counter({c.claim_id: 1 for c in made})  # each once: none lost, none twice
    assert world.sweep().examined == 0


def test_a_run_whose_time_runs_out_defers_the_rest_and_the_next_run_sends_them_once(world: MemoryLifecycle) -> None:
    """At a low SesMaxSendRate a run of many reminders would outlast the function's timeout: it stops sending
    SWEEP_SEND_MARGIN_SECONDS before the end, defers the rest (not failed), and the next run sends each once."""
    made = [world.numbered(n) for n in range(5)]
    world.at(DEADLINE - 7 * DAY)
    world.sweeper.send_rate = 1.0
    started = world.timer.now
    report = world.sweeper.run(remaining=lambda: 16.5 - (world.timer.now - started))  # 16.5 s left of the run
    assert (report.reminded, report.failed, report.poisoned, report.deferred) == (2, 0, 0, 3)  # sent at 0 s and 1 s
    assert len(reminders(world)) == 2
    for claim in made:
        stored = world.stored(claim.claim_id)
        assert stored.email_failures == []
        assert all(n.attempts == 0 for n in stored.pending_notices)  # running out of time is not an attempt

    world.at(DEADLINE - 7 * DAY + timedelta(minutes=5))
    started = world.timer.now
    again = world.sweeper.run(remaining=lambda: 300.0 - (world.timer.now - started))
    assert (again.failed, again.deferred) == (0, 0)
    assert again.reminded + again.notified == 3
    assert reminders(world) == Counter({c.claim_id: 1 for c in made})  # each once: none lost, none twice
    assert world.sweep().examined == 0


def test_a_throttled_partner_notice_waits_without_spending_an_attempt(world: MemoryLifecycle) -> None:
    claim = world.add()
    token = world.requested(claim.claim_id)
    world.mailer.throttle_after = 0
    world.decisions.decide(token, Decision.ACCEPT)
    [notice] = world.stored(claim.claim_id).pending_notices
    assert notice.attempts == 0
    for hours in range(1, 10):  # more runs than outbox_max_attempts: a throttle never gives an email up
        world.at(NOW + timedelta(hours=hours))
        report = world.sweep()
        assert (report.failed, report.poisoned, report.deferred) == (0, 0, 1)
    world.mailer.throttle_after = None
    world.at(NOW + timedelta(hours=11))
    assert world.sweep().notified == 1
    assert [m.tags["kind"] for m in world.mailer.sent].count("consent_accepted") == 1
    assert world.stored(claim.claim_id).email_failures == []


def test_a_throttled_consent_redelivery_keeps_its_attempts_and_goes_out_on_a_later_run(world: MemoryLifecycle) -> None:
    claim = world.add()
    world.mailer.fail_next = 1  # SES unavailable at the request: the consent email waits in the outbox
    with pytest.raises(DependencyUnavailable):
        world.request(claim.claim_id, **FIRST_REQUEST)
    stuck = world.stored(claim.claim_id).consent_email
    assert stuck is not None
    world.sweeper.outbox = world.outbox  # the consent outbox, as wiring builds the sweep
    world.mailer.throttle_after = 0
    for minutes in range(1, 12):  # more runs than outbox_max_attempts
        world.at(NOW + CONSENT_EMAIL_RETRY * minutes)
        report = world.sweep()
        assert (report.redelivered, report.failed, report.poisoned, report.deferred) == (0, 0, 0, 1)
        waiting = world.stored(claim.claim_id).consent_email
        assert waiting is not None
        assert (waiting.status, waiting.attempts) == (EmailStatus.PENDING, stuck.attempts)
    world.mailer.throttle_after = None
    world.at(NOW + CONSENT_EMAIL_RETRY * 13)
    assert world.sweep().redelivered == 1
    [email] = [m for m in world.mailer.sent if m.tags.get("kind") == "consent_request"]
    assert world.decisions.page(token_in(email.text)).status is PageStatus.OPEN
