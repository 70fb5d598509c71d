"""Business metrics, counted from committed changes only (docs/operations.md#business-metrics).

What a change means is decided here, from the change itself, as the domain events are (``mci.domain.events``):
the claim stores count ``change_counts`` once a change has committed (after the conditional write succeeded,
never for an attempt that failed), and the creation counts are made once ``Nominations`` has written the new
claims. A request replayed from the idempotency table, a resend whose write already committed, or a stream or
sweep redelivery commits nothing new, so it counts nothing. Dimensions stay low-cardinality: never a partner,
claim or customer id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mci.domain.claims import AWAITING_CONSENT, Claim, ClaimState, EmailStatus, Origin

if TYPE_CHECKING:
    from mci.domain.ports import ClaimChange, NewClaims
    from mci.domain.reference import PaymentType


@dataclass(frozen=True, slots=True)
class Count:
    """One business event: a metric name, its dimensions (name, value), how many."""

    name: str
    dimensions: tuple[tuple[str, str], ...] = ()
    value: int = 1


class BusinessMetrics(Protocol):
    def count(self, counts: Sequence[Count]) -> None:
        """Record committed business events; never raises into the change that made them."""
        ...


class NoMetrics:
    def count(self, counts: Sequence[Count]) -> None:
        return None


NO_METRICS = NoMetrics()

# Every metric and its dimensions (besides ``service`` and ``stage``), as docs/operations.md lists them.
METRICS: dict[str, tuple[str, ...]] = {
    "CustomersAdded": ("PaymentType",),
    "CustomersClaimed": ("PaymentType",),
    "EligibilityRefusals": ("ReasonCode",),
    "ConsentsRequested": (),
    "ConsentEmailsSent": (),
    "ConsentEmailsResent": (),
    "ConsentEmailsRedelivered": (),
    "ConsentEmailsUndelivered": ("Reason",),
    "ConsentsGranted": (),
    "ConsentsDeclined": (),
    "ClaimsSubmitted": (),
    "ClaimsCompleted": (),
    "ClaimsRejected": (),
    "ClaimsCancelled": (),
    "ClaimsExpired": ("FromState",),
    "RemindersSent": (),
    "ReferralsCreated": (),
    "ReferralsUpgradedToCoSell": (),
    "EmailBounces": (),
    "EmailComplaints": (),
}

_MOVES = {
    ClaimState.CONSENT_REQUESTED: "ConsentsRequested",
    ClaimState.CONSENT_GRANTED: "ConsentsGranted",
    ClaimState.CONSENT_DECLINED: "ConsentsDeclined",
    ClaimState.SUBMITTED: "ClaimsSubmitted",
    ClaimState.COMPLETED: "ClaimsCompleted",
    ClaimState.REJECTED: "ClaimsRejected",
    ClaimState.CANCELLED: "ClaimsCancelled",
}
_FEEDBACK = {EmailStatus.BOUNCED: "EmailBounces", EmailStatus.COMPLAINED: "EmailComplaints"}


def expired(claim: Claim) -> Count:
    """A claim expired, by the state it expired from."""
    from_state = claim.history[-1].from_ if claim.history else None
    return Count("ClaimsExpired", (("FromState", from_state.value if from_state else "unknown"),))


def change_counts(change: ClaimChange) -> list[Count]:
    """What one committed change of one claim counts: its state move, the consent email it recorded as sent
    (first, resent, or redelivered by the sweep) or undelivered, the reminders that left the outbox, SES
    feedback, and the referral it created or upgraded."""
    before, after = change.before, change.after
    counts: list[Count] = []
    if after.state is not before.state:
        counts.append(expired(after) if after.state is ClaimState.EXPIRED else Count(_MOVES[after.state]))
    if len(after.consent_evidence) > len(before.consent_evidence):
        counts.append(Count(_sent_as(before, after)))
    counts += [
        Count("ConsentEmailsUndelivered", (("Reason", f.reason),))
        for f in after.email_failures[len(before.email_failures) :]
        if f.kind == "consent_request"
    ]
    reminders = _reminders_sent(before, after)
    if reminders:
        counts.append(Count("RemindersSent", value=reminders))
    status = after.consent_email.status if after.consent_email else None
    if status in _FEEDBACK and (before.consent_email is None or before.consent_email.status is not status):
        counts.append(Count(_FEEDBACK[status]))
    if change.referral is not None:
        created = before.referral_id is None and after.referral_id is not None
        counts.append(Count("ReferralsCreated" if created else "ReferralsUpgradedToCoSell"))
    return counts


def _sent_as(before: Claim, after: Claim) -> str:
    if before.consent_email is not None and before.consent_email.attempts > 0:
        return "ConsentEmailsRedelivered"  # the sweep sent a link that had never reached SES
    return "ConsentEmailsResent" if after.consent_requests.count > 1 else "ConsentEmailsSent"


def _reminders_sent(before: Claim, after: Claim) -> int:
    """Reminders that left the outbox sent: not put back (SES throttled), not given up, not skipped."""
    if before.state not in AWAITING_CONSENT:
        return 0  # left unsent: consent was answered or the claim ended
    remaining = {(n.kind, n.since) for n in after.pending_notices}
    still_marked = {r.at for r in after.reminders_sent}
    gone = [
        n
        for n in before.pending_notices
        if n.kind == "consent_reminder" and (n.kind, n.since) not in remaining and n.since in still_marked
    ]
    given_up = [f for f in after.email_failures[len(before.email_failures) :] if f.kind == "consent_reminder"]
    return max(0, len(gone) - len(given_up))


def creation_counts(new: NewClaims, payment_types: Iterable[PaymentType]) -> list[Count]:
    """A committed add or claim: one customer per new claim, by its engagement's payment type (in the order
    of ``new.claims``), and the overdue claims the write expired in passing."""
    counts = [
        Count("CustomersAdded" if claim.origin is Origin.ADDED else "CustomersClaimed", (("PaymentType", kind.value),))
        for claim, kind in zip(new.claims, payment_types, strict=True)
    ]
    return counts + [expired(claim) for claim in new.expire]


def refusal_counts(codes: Iterable[str]) -> list[Count]:
    """An add or claim refused for eligibility, once per reason code."""
    return [Count("EligibilityRefusals", (("ReasonCode", code),)) for code in sorted(set(codes))]
