"""Sending email at the email service's pace (docs/scaling.md, "SES: a burst of consent emails and the outbox").

SES accepts at most the account's maximum send rate, per second, for the whole account, and drops what comes
faster with a throttling error. The sweep redelivers up to a batch of queued emails one after the other, so it
spaces its sends at a configured rate (``SES_MAX_SEND_RATE``), and once SES throttles all the same (the API's own
sends share the quota) it sends nothing more in that run: what is left stays queued for the next run. It also stops
sending, the same way, when the invocation's remaining time falls below a margin (``SWEEP_SEND_MARGIN_SECONDS``): a run
Lambda kills after SES took an email but before its outbox write would send that email twice.
"""

from __future__ import annotations

from collections.abc import Callable

from mci.domain.errors import SendingThrottled
from mci.domain.ports import EmailMessage, Mailer

# A new production SES account's maximum send rate (messages a second) as AWS long documented it for accounts
# leaving the sandbox; the account's own is ``MaxSendRate`` in SES v2 GetAccount (docs/operations.md).
NEW_ACCOUNT_SEND_RATE = 14.0

# Seconds of the invocation a send must leave at least: one send and the outbox write after it, with room to spare.
SEND_MARGIN_SECONDS = 15.0


class PacedMailer:
    """One sweep run's mailer: sends at most ``per_second`` a second (``monotonic`` and ``sleep`` are the run's
    clock, faked in tests), and after one throttled send refuses the run's others without calling the service.

    ``remaining``: seconds left of the invocation (None: no limit, a run by hand). A send that would start with less
    than ``margin`` left (after its wait) is refused as a throttle is, and so is every one after it."""

    def __init__(
        self,
        mailer: Mailer,
        per_second: float,
        monotonic: Callable[[], float],
        sleep: Callable[[float], None],
        *,
        remaining: Callable[[], float] | None = None,
        margin: float = SEND_MARGIN_SECONDS,
    ) -> None:
        self._mailer = mailer
        self._interval = 1.0 / per_second
        self._monotonic = monotonic
        self._sleep = sleep
        self._remaining = remaining
        self._margin = margin
        self._next_at: float | None = None
        self.throttled = False  # no more sends this run: SES throttled one, or the run's time is nearly up

    def send(self, message: EmailMessage) -> str:
        if self.throttled:
            raise SendingThrottled("This run stopped sending (throttled, or out of time); the email waits.")
        now = self._monotonic()
        wait = self._next_at - now if self._next_at is not None and now < self._next_at else 0.0
        if self._remaining is not None and self._remaining() - wait < self._margin:
            self.throttled = True
            raise SendingThrottled("The run's time is nearly up; the email waits for the next run.")
        if wait:
            self._sleep(wait)
            now = max(self._monotonic(), now + wait)
        self._next_at = now + self._interval
        try:
            return self._mailer.send(message)
        except SendingThrottled:
            self.throttled = True
            raise
