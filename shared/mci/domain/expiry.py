"""Rule 17: the sweep expires claims past their deadline and reminds partners before consent deadlines."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mci.domain.claims import CONSENT_EMAIL_RETRY, Claim, ReminderSent
from mci.domain.clock import Clock
from mci.domain.errors import DependencyUnavailable
from mci.domain.ports import ClaimChange, ClaimChanges, ConcurrentChange, DueClaims, EmailMessage, Mailer
from mci.emails.render import long_date, render


@dataclass
class SweepReport:
    examined: int = 0
    expired: int = 0
    reminded: int = 0
    notified: int = 0
    redelivered: int = 0
    skipped: int = 0
    failed: int = 0
    expired_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "examined": self.examined,
            "expired": self.expired,
            "reminded": self.reminded,
            "notified": self.notified,
            "redelivered": self.redelivered,
            "skipped": self.skipped,
            "failed": self.failed,
        }


def expire_if_due(claim: Claim, now: datetime) -> Claim | None:
    """The claim expired at its deadline, if the deadline has passed; None otherwise."""
    deadline = claim.deadline
    if deadline is None or now < deadline or claim.state.is_terminal:
        return None
    return claim.expired_at_deadline()


class Outbox(Protocol):
    def deliver_notices(self, claim: Claim) -> Claim: ...

    def redeliver(self, claim: Claim) -> Claim: ...


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
    """Idempotent: every write is conditional on the version read, so a rerun after a crash finishes the work."""

    claims: ClaimChanges
    due: DueClaims
    mailer: Mailer
    clock: Clock
    outbox: Outbox | None = None
    engagement_names: Callable[[Sequence[str]], Mapping[str, str]] = _no_names
    batch_size: int = 500

    def run(self) -> SweepReport:
        report = SweepReport()
        now = self.clock.now()
        due = self.due.due_claims(now, self.batch_size)
        names = _EngagementNames(self.engagement_names, [c.engagement_id for c in due])
        for claim in due:
            report.examined += 1
            try:
                self._process(claim, now, report, names)
            except ConcurrentChange:
                report.skipped += 1  # someone else moved it; the next run sees its new due time
        return report

    def _process(self, claim: Claim, now: datetime, report: SweepReport, names: Callable[[str], str]) -> None:
        claim = self._flush_outbox(claim, now, report)
        expired = expire_if_due(claim, now)
        if expired is not None:
            self.claims.apply(ClaimChange(before=claim, after=expired))
            report.expired += 1
            report.expired_ids.append(claim.claim_id)
            return
        due = sorted((d for d, at in claim.reminder_times().items() if at <= now), reverse=True)
        if not due:
            report.skipped += 1
            return
        # Mark first, then send: a crash in between loses a reminder rather than sending it twice.
        sent = [ReminderSent(days_before=d, at=now) for d in due]
        marked = claim.model_copy(
            update={
                "pending_reminders": [d for d in claim.pending_reminders if d not in due],
                "reminders_sent": [*claim.reminders_sent, *sent],
                "version": claim.version + 1,
            }
        )
        self.claims.apply(ClaimChange(before=claim, after=marked))
        try:
            self._remind(marked, min(due), names(claim.engagement_id))
        except DependencyUnavailable:
            # Put the reminder back so the next run tries again.
            self.claims.apply(
                ClaimChange(before=marked, after=claim.model_copy(update={"version": marked.version + 1}))
            )
            report.failed += 1
            return
        report.reminded += 1

    def _flush_outbox(self, claim: Claim, now: datetime, report: SweepReport) -> Claim:
        """Emails whose change committed but whose send failed: sent now (at least once, usually once)."""
        if self.outbox is None:
            return claim
        if any(n.next_attempt() <= now for n in claim.pending_notices):
            before = len(claim.pending_notices)
            claim = self.outbox.deliver_notices(claim)
            report.notified += before - len(claim.pending_notices)
        email = claim.consent_email
        if claim.consent_email_stuck and email is not None and email.updated_at + CONSENT_EMAIL_RETRY <= now:
            try:
                claim = self.outbox.redeliver(claim)
            except DependencyUnavailable:
                report.failed += 1
                return claim
            report.redelivered += 1
        return claim

    def _remind(self, claim: Claim, days_before: int, engagement_name: str) -> None:
        rendered = render(
            "consent_reminder",
            "en",
            {
                "partner_contact_name": claim.partner_contact.name,
                "friendly_name": claim.friendly_name,
                "engagement_name": engagement_name,
                "deadline": long_date(claim.consent_deadline, "en"),
                "days_before": str(days_before),
                "claim_id": claim.claim_id,
                "state": claim.state.value,
            },
        )
        self.mailer.send(
            EmailMessage(
                to=claim.partner_contact.email,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                tags={"claim_id": claim.claim_id, "kind": "consent_reminder"},
            )
        )
