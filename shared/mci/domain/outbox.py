"""The partner's email outbox (rules 16, 17 and 29): notices and reminders written with the change they report,
sent after it, retried by the sweep, and given up for good when SES refuses them or keeps failing.

Exactly once from the partner's point of view: an email leaves the outbox in the write that follows its send,
so a crash between the two sends it again only if SES's answer was lost (nobody can know then).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mci.domain.claims import AWAITING_CONSENT, Claim, EmailFailure, PendingNotice
from mci.domain.clock import Clock
from mci.domain.errors import DependencyUnavailable, EmailRejected
from mci.domain.ports import ClaimChange, ClaimChanges, ConcurrentChange, EmailMessage, Mailer
from mci.emails.render import long_date, render

DEFAULT_MAX_ATTEMPTS = 8

_Key = tuple[str, datetime]


def _key(notice: PendingNotice) -> _Key:
    return (notice.kind, notice.since)


@dataclass
class Notices:
    """Sends a claim's pending notices and takes the sent, refused and given-up ones out of its outbox."""

    claims: ClaimChanges
    mailer: Mailer
    clock: Clock
    write_attempts: int = 5
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    sleep: Callable[[float], None] = time.sleep

    def deliver(self, claim: Claim) -> Claim:
        if not claim.pending_notices:
            return claim
        sent: set[_Key] = set()
        failed: set[_Key] = set()
        dropped: dict[_Key, EmailFailure] = {}
        for notice in claim.pending_notices:
            if notice.kind == "consent_reminder" and claim.state not in AWAITING_CONSENT:
                sent.add(_key(notice))  # consent was answered or the claim ended: the reminder has no point
                continue
            try:
                self._send(claim, notice)
            except EmailRejected:
                dropped[_key(notice)] = self._failure(claim, notice, "email_rejected")
                continue
            except DependencyUnavailable:
                if notice.attempts + 1 >= self.max_attempts:
                    dropped[_key(notice)] = self._failure(claim, notice, "gave_up")  # poison: never retried forever
                else:
                    failed.add(_key(notice))
                continue
            sent.add(_key(notice))
        # Sent notices must leave the outbox, or the sweep sends them again: a throttled write is tried again,
        # and a concurrent change is re-read and the sent ones taken out of what it left.
        for attempt in range(self.write_attempts):
            after = self._without(claim, sent, failed, dropped)
            try:
                self.claims.apply(ClaimChange(before=claim, after=after))
            except (ConcurrentChange, DependencyUnavailable) as error:
                if attempt == self.write_attempts - 1:
                    return claim  # the sweep sends what is still pending: at least once, never lost
                if isinstance(error, DependencyUnavailable):
                    self.sleep(random.uniform(0.01, 0.05 * (attempt + 1)))  # noqa: S311 - jitter
                    continue
                try:
                    current = self.claims.get_claim(claim.claim_id)
                except DependencyUnavailable:
                    return claim
                if current is None:
                    return claim
                claim = current
                continue
            return after
        return claim

    @staticmethod
    def _without(claim: Claim, sent: set[_Key], failed: set[_Key], dropped: dict[_Key, EmailFailure]) -> Claim:
        present = {_key(n) for n in claim.pending_notices}
        # A reminder SES could not take goes back among the claim's pending reminders, due again at once: the
        # sweep's next run marks and sends it anew, until the consent deadline ends its point.
        put_back = {_key(n) for n in claim.pending_notices if _key(n) in failed and n.kind == "consent_reminder"}
        marked_at = {since for _, since in put_back}
        remaining = [
            n.model_copy(update={"attempts": n.attempts + 1}) if _key(n) in failed else n
            for n in claim.pending_notices
            if _key(n) not in sent and _key(n) not in dropped and _key(n) not in put_back
        ]
        failures = [f for k, f in dropped.items() if k in present]
        days = {r.days_before for r in claim.reminders_sent if r.at in marked_at}
        return claim.model_copy(
            update={
                "pending_notices": remaining,
                "email_failures": [*claim.email_failures, *failures],
                "pending_reminders": sorted({*claim.pending_reminders, *days}, reverse=True),
                "reminders_sent": [r for r in claim.reminders_sent if r.at not in marked_at],
                "version": claim.version + 1,
            }
        )

    def _failure(self, claim: Claim, notice: PendingNotice, reason: str) -> EmailFailure:
        return EmailFailure.model_validate(
            {
                "kind": notice.kind,
                "to": claim.partner_contact.email,
                "reason": reason,
                "at": self.clock.now(),
                "attempts": notice.attempts + 1,
            }
        )

    def _send(self, claim: Claim, notice: PendingNotice) -> None:
        rendered = render(
            notice.kind,
            "en",
            {
                "partner_contact_name": claim.partner_contact.name,
                "friendly_name": claim.friendly_name,
                "engagement_name": notice.engagement_name,
                "decided_on": long_date(notice.since, "en"),
                "submission_deadline": long_date(claim.submission_deadline, "en") if claim.submission_deadline else "",
                "deadline": long_date(claim.consent_deadline, "en"),
                "days_before": str(notice.days_before or ""),
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
                tags={"claim_id": claim.claim_id, "kind": notice.kind},
            )
        )
