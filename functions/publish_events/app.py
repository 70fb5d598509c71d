"""The table's stream -> domain events on EventBridge (rule 20), in order, each record's event once.

Partial batch failure reporting: the first record whose event was not published is reported, and
nothing after it is published, so Lambda's retry (from that record) publishes each event exactly once.

Poison records (rule 29): a record that cannot be read, or whose event EventBridge refuses for good, is
logged as ``poison record`` and passed over, so it never holds back its shard (docs/operations.md).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.adapters.dynamodb_claims import claim_from_item, claim_head_from_item, referral_from_item
from mci.domain.errors import DependencyUnavailable
from mci.domain.events import (
    DomainEvent,
    EventRejected,
    claim_event,
    claim_event_name,
    publish_in_order,
    referral_event,
)
from mci.domain.referrals import Referral
from mci.wiring import event_bus

logger = Logger()


def event_of(record: dict[str, Any]) -> DomainEvent | None:
    change = record.get("dynamodb") or {}
    old, new = change.get("OldImage"), change.get("NewImage")
    kind = ((new or old or {}).get("type") or {}).get("S")
    if kind == "claim":
        if not new:
            return None
        # Most changes (email status, reminders, the outbox) are no event: decided on two attributes,
        # and only the new image of an event is validated as a whole claim.
        before = claim_head_from_item(old) if old else None
        if claim_event_name(before, claim_head_from_item(new)) is None:
            return None
        return claim_event(before, claim_from_item(new))
    if kind == "referral":
        return referral_event(_referral(old), _referral(new))
    return None


def _referral(image: dict[str, Any] | None) -> Referral | None:
    return referral_from_item(image) if image else None


# What a record's data can raise when it is not what the code reads (pydantic's errors are ValueErrors).
UNREADABLE = (ValueError, LookupError, TypeError, AttributeError)


def _sequence(record: dict[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records: list[dict[str, Any]] = event.get("Records") or []
    poisoned: list[int] = []

    def poison(position: int, reason: str) -> None:
        poisoned.append(position)
        logger.error("poison record", extra={"sequence_number": _sequence(records[position]), "reason": reason})

    events: list[DomainEvent | None] = []
    for position, record in enumerate(records):
        try:
            events.append(event_of(record))
        except UNREADABLE as error:
            poison(position, f"unreadable: {type(error).__name__}")
            events.append(None)

    def rejected(position: int, error: EventRejected) -> None:
        poison(position, f"refused by EventBridge: {error.code}")

    try:
        failed_at = publish_in_order(event_bus(), events, rejected)
    except DependencyUnavailable:
        failed_at = next((i for i, e in enumerate(events) if e is not None), None)
    end = failed_at if failed_at is not None else len(events)
    published = sum(1 for i, e in enumerate(events[:end]) if e and i not in poisoned)
    logger.info(
        "stream batch",
        extra={"records": len(records), "published": published, "failed_at": failed_at, "poisoned": len(poisoned)},
    )
    if failed_at is None:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": records[failed_at]["dynamodb"]["SequenceNumber"]}]}
