"""The table's stream -> domain events on EventBridge (rule 20), in order, each record's event once.

Partial batch failure reporting: the first record whose event was not published is reported, and
nothing after it is published, so Lambda's retry (from that record) publishes each event exactly once.

Poison records (rule 29): a record that cannot be read, or whose event EventBridge refuses for good, is
logged as ``poison record`` and passed over, so it never holds back its shard (docs/operations.md).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.adapters.dynamodb_stream import UNREADABLE, event_of
from mci.domain.errors import DependencyUnavailable
from mci.domain.events import DomainEvent, EventRejected, publish_in_order
from mci.observability import logger, observed
from mci.settings import get_settings
from mci.tracing import annotate, traced
from mci.wiring import event_bus


def _sequence(record: dict[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))


def _event_id(record: dict[str, Any]) -> str | None:
    return str(record.get("eventID") or "") or None


@traced("publish_events")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Observed with the stream record's event id as correlation id: the batch's lines carry its first
    record's, a poison line the id of the record it passes over."""
    records: list[dict[str, Any]] = event.get("Records") or []
    first = _event_id(records[0]) if records else None
    return observed(event, context, lambda: _publish(records), correlation_id=first or context.aws_request_id)


def _publish(records: list[dict[str, Any]]) -> dict[str, Any]:
    poisoned: list[int] = []
    batch_id = logger.get_correlation_id()

    def poison(position: int, reason: str) -> None:
        poisoned.append(position)
        logger.set_correlation_id(_event_id(records[position]) or batch_id)
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
        failed_at = publish_in_order(event_bus(), events, rejected, get_settings().event_versions)
    except DependencyUnavailable:
        failed_at = next((i for i, e in enumerate(events) if e is not None), None)
    end = failed_at if failed_at is not None else len(events)
    published = sum(1 for i, e in enumerate(events[:end]) if e and i not in poisoned)
    logger.set_correlation_id(batch_id)
    annotate("published", published)
    annotate("poisoned", len(poisoned))
    logger.info(
        "stream batch",
        extra={"records": len(records), "published": published, "failed_at": failed_at, "poisoned": len(poisoned)},
    )
    if failed_at is None:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": records[failed_at]["dynamodb"]["SequenceNumber"]}]}
