"""Rule 17: the sweep expires claims past their deadline and reminds partners before consent deadlines."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mci.domain.claims import CONSENT_EMAIL_RETRY, Claim, PendingNotice, ReminderSent
from mci.domain.clock import Clock
from mci.domain.errors import DependencyUnavailable, DomainError, EmailRejected, SendingThrottled
from mci.domain.outbox import Notices
from mci.domain.ports import ClaimChange, ClaimChanges, ConcurrentChange, DueClaims, Mailer
from mci.domain.sending import NEW_ACCOUNT_SEND_RATE, SEND_MARGIN_SECONDS, PacedMailer


@dataclass
class SweepReport:
    examined: int = 0
    expired: int = 0
    reminded: int = 0
    notified: int = 0
    redelivered: int = 0
    skipped: int = 0
    failed: int = 0
    poisoned: int = 0
    # Claims whose emails wait for the next run because SES throttled this one, or its time was nearly up
    # (mci.domain.sending): not a failure.
    deferred: int = 0
    lag_seconds: int = 0  # how late the run came to its most overdue claim (the dashboard's sweep lag)
    expired_ids: list[str] = field(default_factory=list)
    poison: list[dict[str, str]] = field(default_factory=list)  # one per item given up: claim, kind, reason
    deferred_ids: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, int]:
        return {
            "examined": self.examined,
            "expired": self.expired,
            "reminded": self.reminded,
            "notified": self.notified,
            "redelivered": self.redelivered,
            "skipped": self.skipped,
            "failed": self.failed,
            "poisoned": self.poisoned,
            "deferred": self.deferred,
            "lag_seconds": self.lag_seconds,
        }

    def defer(self, claim_id: str) -> None:
        """The claim's emails stay queued for the next run: SES throttled this one, or its time was nearly up."""
        self.deferred_ids.add(claim_id)
        self.deferred = len(self.deferred_ids)

    def poisoned_item(self, claim_id: str, kind: str, reason: str) -> None:
        """Rule 29: an item this run gave up for good (recorded on the claim, or failing every run)."""
        self.poisoned += 1
        self.poison.append({"claim_id": claim_id, "kind": kind, "reason": reason})


# What one claim can raise that retrying the run would not cure: a refusal (a domain error), or data the code
# cannot handle. Anything else (the process failing) ends the run, and the scheduler runs it again.
POISON = (DomainError, ValueError, LookupError, TypeError, AttributeError)


def expire_if_due(claim: Claim, now: datetime, correlation_id: str | None = None) -> Claim | None:
    """The claim expired at its deadline, if the deadline has passed; None otherwise.

    ``correlation_id``: the sweep run's, kept in the expiry's history entry."""
    deadline = claim.deadline
    if deadline is None or now < deadline or claim.state.is_terminal:
        return None
    return claim.expired_at_deadline(correlation_id)


class Outbox(Protocol):
    """What the sweep sends (``domain/outbox.py``): the partner's pending notices, a consent email SES never took."""

    def deliver_notices(self, claim: Claim) -> Claim: ...

    def redeliver(self, claim: Claim) -> Claim: ...

    def through(self, mailer: Mailer) -> Outbox: ...


def _no_names(engagement_ids: Sequence[str]) -> Mapping[str, str]:
    return {}


@dataclass
class _EngagementNames:
    """The names of a run's engagements, read at its first reminder, once, in one batch (absent: the id)."""

    read: Callable[[Sequence[str]], Mapping[str, str]]
    engagement_ids: Sequence[str]
    names: Mapping[str, str] | None = None

    def __call__(self, engagement_id: str) -> str:
        if self.names is None:
            self.names = self.read(sorted(set(self.engagement_ids)))
        return self.names.get(engagement_id, engagement_id)


@dataclass
class Sweep:
    """Idempotent: every write is conditional on the version read, so a rerun after a crash finishes the work.

    Each claim is isolated (rule 29): whatever one claim raises, the run goes on with the next; what is given up
    for good is recorded on its claim and reported as poison (the handler logs it, an alarm counts it).
    """

    claims: ClaimChanges
    due: DueClaims
    mailer: Mailer
    clock: Clock
    outbox: Outbox | None = None  # by default notices only, sent through ``mailer`` and recorded through ``claims``
    engagement_names: Callable[[Sequence[str]], Mapping[str, str]] = _no_names
    batch_size: int = 500
    # Emails a second, at most (SES_MAX_SEND_RATE): the run's sends are paced on this clock (mci.domain.sending).
    send_rate: float = NEW_ACCOUNT_SEND_RATE
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # A run sends nothing more once its invocation has less than this many seconds left (SWEEP_SEND_MARGIN_SECONDS).
    send_margin: float = SEND_MARGIN_SECONDS

    def run(self, correlation_id: str | None = None, remaining: Callable[[], float] | None = None) -> SweepReport:
        """One run; ``correlation_id`` (the run's, as its log lines carry it) goes into what it writes: the history
        entries of its expiries and the reminders it queues. ``remaining``: seconds left of the invocation (the
        handler's Lambda context); once below ``send_margin`` the run defers its other emails. None: no limit."""
        mailer = PacedMailer(  # one pace per run
            self.mailer, self.send_rate, self.monotonic, self.sleep, remaining=remaining, margin=self.send_margin
        )
        outbox = self.outbox.through(mailer) if self.outbox is not None else None
        return _Run(self, mailer, outbox).run(correlation_id)


@dataclass
class _Run:
    """One run of the sweep: its report, and the paced mailer (and outbox) every email of the run goes through.
    Once SES throttles (or the run's time is nearly up), the run still expires what is due but sends nothing more:
    the emails stay queued."""

    sweep: Sweep
    mailer: PacedMailer
    outbox: Outbox | None

    @property
    def claims(self) -> ClaimChanges:
        return self.sweep.claims

    def run(self, correlation_id: str | None) -> SweepReport:
        report = SweepReport()
        sweep = self.sweep
        now = sweep.clock.now()
        due = sweep.due.due_claims(now, sweep.batch_size)
        report.lag_seconds = max(
            (int((now - at).total_seconds()) for c in due if (at := c.due_at) is not None), default=0
        )
        names = _EngagementNames(sweep.engagement_names, [c.engagement_id for c in due])
        for claim in due:
            report.examined += 1
            try:
                after = self._process(claim, now, report, names, correlation_id)
            except ConcurrentChange:
                report.skipped += 1  # someone else moved it; the next run sees its new due time
                continue
            except SendingThrottled:
                report.defer(claim.claim_id)  # nothing was sent: the next run sends it
                continue
            except DependencyUnavailable:
                report.failed += 1  # throttled or failing for now: the claim stays due, the next run retries it
                continue
            except POISON as error:  # one claim whose data or whose email fails for good never stops the others
                report.poisoned_item(claim.claim_id, "claim", type(error).__name__)
                continue
            for failure in after.email_failures[len(claim.email_failures) :]:
                report.poisoned_item(claim.claim_id, failure.kind, failure.reason)
        return report

    def _process(
        self,
        claim: Claim,
        now: datetime,
        report: SweepReport,
        names: Callable[[str], str],
        correlation_id: str | None,
    ) -> Claim:
        claim = self._flush_outbox(claim, now, report)
        expired = expire_if_due(claim, now, correlation_id)
        if expired is not None:
            self.claims.apply(ClaimChange(before=claim, after=expired))
            report.expired += 1
            report.expired_ids.append(claim.claim_id)
            return expired
        due = sorted((d for d, at in claim.reminder_times().items() if at <= now), reverse=True)
        if not due:
            report.skipped += 1
            return claim
        if self.mailer.throttled:
            report.defer(claim.claim_id)  # not marked: the reminder stays due for the next run
            return claim
        # Exactly once (rule 17): the mark and the reminder in the outbox in one write, then the send, then the
        # reminder out of the outbox. A crash after the mark leaves it in the outbox: the next run sends it.
        notice = PendingNotice(
            kind="consent_reminder",
            engagement_name=names(claim.engagement_id),
            since=now,
            days_before=min(due),
            correlation_id=correlation_id,
        )
        marked = claim.model_copy(
            update={
                "pending_reminders": [d for d in claim.pending_reminders if d not in due],
                "reminders_sent": [*claim.reminders_sent, *(ReminderSent(days_before=d, at=now) for d in due)],
                "pending_notices": [*claim.pending_notices, notice],
                "version": claim.version + 1,
            }
        )
        self.claims.apply(ClaimChange(before=claim, after=marked))
        after = self._deliver(marked)
        unsent = len(after.reminders_sent) < len(marked.reminders_sent)  # put back among the pending reminders
        if self.mailer.throttled and (unsent or after.pending_notices):
            report.defer(claim.claim_id)  # SES throttled: the reminder is due again for the next run, no failure
        elif any(n.kind == notice.kind and n.since == now for n in after.pending_notices):
            report.failed += 1  # the reminder stays in the outbox (its write failed): the next run sends it
        elif unsent:
            report.failed += 1  # SES could not take it: put back among the pending reminders, due again
        elif len(after.email_failures) == len(marked.email_failures):
            report.reminded += 1
        return after

    def _deliver(self, claim: Claim) -> Claim:
        if self.outbox is None:
            return Notices(claims=self.claims, mailer=self.mailer, clock=self.sweep.clock).deliver(claim)
        return self.outbox.deliver_notices(claim)

    def _flush_outbox(self, claim: Claim, now: datetime, report: SweepReport) -> Claim:
        """Emails whose change committed but whose send failed: sent now (at least once, usually once)."""
        if any(n.next_attempt() <= now for n in claim.pending_notices):
            before = len(claim.pending_notices)
            claim = self._deliver(claim)
            report.notified += before - len(claim.pending_notices)
            if self.mailer.throttled and claim.pending_notices:
                report.defer(claim.claim_id)
        if self.outbox is None:
            return claim
        email = claim.consent_email
        if claim.consent_email_stuck and email is not None and email.updated_at + CONSENT_EMAIL_RETRY <= now:
            if self.mailer.throttled:
                report.defer(claim.claim_id)  # no new link written: the next run redelivers it
                return claim
            try:
                claim = self.outbox.redeliver(claim)
            except EmailRejected:
                # Recorded on the claim (poison, not retried); if that record failed, the claim stays pending with
                # its link marked unsent, and the next run sends to that address again and records then.
                return self.claims.get_claim(claim.claim_id) or claim
            except SendingThrottled:
                report.defer(claim.claim_id)
                return self.claims.get_claim(claim.claim_id) or claim  # the new link waits, its attempt not counted
            except DependencyUnavailable:
                report.failed += 1
                return self.claims.get_claim(claim.claim_id) or claim  # its attempt is counted on the claim
            report.redelivered += 1
        return claim
