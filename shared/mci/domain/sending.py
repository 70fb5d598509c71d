"""Sending email at the email service's pace (docs/scaling.md, "SES: a burst of consent emails and the outbox").

SES accepts at most the account's maximum send rate, per second, for the whole account, and drops what comes
faster with a throttling error. The sweep redelivers up to a batch of queued emails one after the other, so it
spaces its sends at a configured rate (``SES_MAX_SEND_RATE``), and once SES throttles all the same (the API's own
sends share the quota) it sends nothing more in that run: what is left stays queued for the next run.
"""

from __future__ import annotations

from collections.abc import Callable

from mci.domain.errors import SendingThrottled
from mci.domain.ports import EmailMessage, Mailer

# A new production SES account's maximum send rate (messages a second) as AWS long documented it for accounts
# leaving the sandbox; the account's own is ``MaxSendRate`` in SES v2 GetAccount (docs/operations.md).
NEW_ACCOUNT_SEND_RATE = 14.0


class PacedMailer:
    """One sweep run's mailer: sends at most ``per_second`` a second (``monotonic`` and ``sleep`` are the run's
    clock, faked in tests), and after one throttled send refuses the run's others without calling the service."""

    def __init__(
        self,
        mailer: Mailer,
        per_second: float,
        monotonic: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._mailer = mailer
        self._interval = 1.0 / per_second
        self._monotonic = monotonic
        self._sleep = sleep
        self._next_at: float | None = None
        self.throttled = False

    def send(self, message: EmailMessage) -> str:
        if self.throttled:
            raise SendingThrottled("The email service throttled this run; the email waits for the next run.")
        now = self._monotonic()
        if self._next_at is not None and now < self._next_at:
            self._sleep(self._next_at - now)
            now = max(self._monotonic(), self._next_at)
        self._next_at = now + self._interval
        try:
            return self._mailer.send(message)
        except SendingThrottled:
            self.throttled = True
            raise
