"""Rule 20: domain events, derived from committed state (the table's stream), never from a request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mci.domain.claims import Claim, ClaimState
from mci.domain.clock import isoformat
from mci.domain.errors import DependencyUnavailable
from mci.domain.referrals import Referral, ReferralType

if TYPE_CHECKING:
    from mci.domain.ports import EventBus

SCHEMA_VERSION = "1"  # of the detail an event is built with; ``DomainEvent.in_version`` gives the others
# Every detail version the publisher can put (docs/events.md#versions): v2 is v1 and ``correlation_id``.
SCHEMA_VERSIONS = ("1", "2")
SOURCE = "mci.customers"

TRANSITION_EVENTS = {
    ClaimState.CONSENT_REQUESTED: "ConsentRequested",
    ClaimState.CONSENT_GRANTED: "ConsentGranted",
    ClaimState.CONSENT_DECLINED: "ConsentDeclined",
    ClaimState.SUBMITTED: "ClaimSubmitted",
    ClaimState.COMPLETED: "ClaimCompleted",
    ClaimState.REJECTED: "ClaimRejected",
    ClaimState.CANCELLED: "ClaimCancelled",
    ClaimState.EXPIRED: "ClaimExpired",
}
# Reasons a person typed (cancellation, review) may hold personal data: they stay in the claim's history.
TYPED_REASONS = frozenset({ClaimState.CANCELLED, ClaimState.COMPLETED, ClaimState.REJECTED})
EVENT_TYPES = ("ClaimCreated", *TRANSITION_EVENTS.values(), "ReferralCreated", "ReferralUpgradedToCoSell")


@dataclass(frozen=True, slots=True)
class DomainEvent:
    detail_type: str
    event_id: str  # deterministic: consumers de-duplicate on it (per version: both versions share it)
    occurred_at: datetime
    detail: dict[str, Any]  # version 1
    # The request or invocation that committed the change, read from the change's own record: deterministic.
    correlation_id: str | None = None

    def in_version(self, version: str) -> DomainEvent:
        """This event with its detail in schema ``version`` (one of SCHEMA_VERSIONS)."""
        if version == SCHEMA_VERSION:
            return self
        if version == "2":
            detail = {**self.detail, "schema_version": "2", "correlation_id": self.correlation_id}
            return replace(self, detail=detail)
        raise ValueError(f"no schema version {version!r} of domain events")


def _claim_detail(claim: Claim, event_id: str, from_state: ClaimState | None) -> dict[str, Any]:
    """What a consumer needs, and no personal data: no names, emails or phone numbers."""
    last = claim.history[-1] if claim.history else None
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "claim_id": claim.claim_id,
        "claim_version": claim.version,
        "partner_id": claim.partner_id,
        "location_id": claim.location_id,
        "engagement_id": claim.engagement_id,
        "origin": claim.origin.value,
        "identifier_type": claim.identifier.type.value,
        "from_state": from_state.value if from_state else None,
        "to_state": claim.state.value,
        "actor": last.actor if last else None,
        "reason": last.reason if last and last.to not in TYPED_REASONS else None,
        "consent_requests": claim.consent_requests.count,
        "deadline": isoformat(claim.deadline) if claim.deadline else None,
        "referral_id": claim.referral_id,
        "occurred_at": isoformat(claim.updated_at),
    }


@dataclass(frozen=True, slots=True)
class ClaimHead:
    """The two things of a claim image that decide whether its change is an event."""

    state: ClaimState
    consent_requests: int

    @classmethod
    def of(cls, claim: Claim) -> ClaimHead:
        return cls(claim.state, claim.consent_requests.count)


def claim_event_name(old: ClaimHead | None, new: ClaimHead) -> str | None:
    """The event a change from ``old`` (None: a new claim) to ``new`` means, if any."""
    if old is None:
        return "ClaimCreated"
    if new.state is not old.state:
        return TRANSITION_EVENTS.get(new.state)
    if new.state is ClaimState.CONSENT_REQUESTED and new.consent_requests > old.consent_requests:
        return "ConsentRequested"  # a resend
    return None


def claim_event(old: Claim | ClaimHead | None, new: Claim | None) -> DomainEvent | None:
    """The one event a committed change of a claim item means, if any.

    The old image only decides (its state and consent requests), so a caller may pass just its head.
    """
    if new is None:
        return None
    before = ClaimHead.of(old) if isinstance(old, Claim) else old
    name = claim_event_name(before, ClaimHead.of(new))
    if name is None:
        return None
    event_id = f"{new.claim_id}:{new.version}:{name}"
    from_state = before.state if before else None
    detail = _claim_detail(new, event_id, from_state)
    return DomainEvent(name, event_id, new.updated_at, detail, _committed_by(new, resend=from_state is new.state))


def _committed_by(claim: Claim, *, resend: bool) -> str | None:
    """The correlation id of the change: its new history entry's; a resend writes none, so the consent email's it
    queued. An entry stored before the field existed has the API request id, which was its correlation id."""
    if resend:
        return claim.consent_email_correlation_id
    last = claim.history[-1] if claim.history else None
    return (last.correlation_id or last.request_id) if last else None


def referral_event(old: Referral | None, new: Referral | None) -> DomainEvent | None:
    if new is None:
        return None
    if old is None:
        name = "ReferralCreated"
    elif new.type is ReferralType.CO_SELL and old.type is not ReferralType.CO_SELL:
        name = "ReferralUpgradedToCoSell"
    else:
        return None
    event_id = f"{new.referral_id}:{name}"
    detail = {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "referral_id": new.referral_id,
        "claim_id": new.claim_id,
        "partner_id": new.partner_id,
        "engagement_id": new.engagement_id,
        "type": new.type.value,
        "status": new.status.value,
        "deal_size_usd": float(new.deal_size_usd),
        "customer": {
            "identifier_type": new.customer.identifier_type,
            "identifier_value": new.customer.identifier_value,
        },
        "occurred_at": isoformat(new.updated_at),
    }
    return DomainEvent(name, event_id, new.updated_at, detail, new.correlation_id)


class EventRejected(Exception):
    """The bus refused an event for good (a malformed entry): publishing it again cannot help (rule 29)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _skip(position: int, error: EventRejected) -> None:
    return None


def publish_in_order(
    bus: EventBus,
    events: list[DomainEvent | None],
    rejected: Callable[[int, EventRejected], None] = _skip,
    versions: Sequence[str] = (SCHEMA_VERSION,),
) -> int | None:
    """Publish the events of a stream batch in order, each in every one of ``versions``; the position of the
    first one not published (in every version).

    Nothing after a failure is published, so the retry (which restarts at that record) sends each
    event once. The versions of one event go in one call and stand or fall together: when one is refused the
    retry puts them all again, so no version is lost (a subscriber of another version may get it twice, and
    de-duplicates on ``event_id``). An event the bus refuses for good is handed to ``rejected`` and passed over:
    it would hold back its shard until the record ages out, and every later change with it.
    """
    for position, event in enumerate(events):
        if event is None:
            continue
        try:
            # One event per call: EventBridge would publish the entries past a refusal, which the retry repeats.
            published = bus.publish([event.in_version(v) for v in versions])
        except DependencyUnavailable:
            return position
        except EventRejected as error:
            rejected(position, error)
            continue
        if not all(published):
            return position
    return None
