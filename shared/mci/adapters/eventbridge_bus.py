"""Domain events onto the service's EventBridge bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from mci.adapters.aws import dependency
from mci.domain.events import SOURCE, DomainEvent, EventRejected

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

BATCH = 10  # PutEvents takes at most ten entries
# Entry errors that publishing the same entry again cannot cure (rule 29); any other is retried.
REJECTED_ENTRY_CODES = frozenset({"MalformedDetail", "InvalidArgument", "ValidationException"})


class EventBridgeBus:
    # The client operations it calls (mci.snapstart primes each; tests/moto/test_iam_least_privilege.py checks).
    AWS_CALLS: ClassVar[tuple[str, ...]] = ("events:PutEvents",)

    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, events: Sequence[DomainEvent]) -> list[bool]:
        """One flag per event; EventRejected when entries are refused for good and no other entry failed (after the
        whole call). An entry that failed only for now beside a refusal makes the whole a retry: passing it over
        would lose that entry, and the retry ends in the refusal alone."""
        results: list[bool] = []
        rejected: str | None = None
        for_now = False
        for start in range(0, len(events), BATCH):
            chunk = events[start : start + BATCH]
            entries: list[PutEventsRequestEntryTypeDef] = [
                {
                    "Source": SOURCE,
                    "DetailType": e.detail_type,
                    "Detail": json.dumps(e.detail, sort_keys=True),
                    "EventBusName": self._bus,
                    "Time": e.occurred_at,
                    "Resources": [],
                }
                for e in chunk
            ]
            with dependency("EventBridge"):
                response = self._client.put_events(Entries=entries)
            answers = response.get("Entries", [])
            results.extend("ErrorCode" not in entry for entry in answers)
            if len(results) < start + len(chunk):
                results.extend([False] * (start + len(chunk) - len(results)))
            refused = [str(e["ErrorCode"]) for e in answers if e.get("ErrorCode") in REJECTED_ENTRY_CODES]
            rejected = rejected or (refused[0] if refused else None)
            for_now = (
                for_now
                or len(answers) < len(chunk)
                or any("ErrorCode" in e and e["ErrorCode"] not in REJECTED_ENTRY_CODES for e in answers)
            )
        if rejected is not None and not for_now:
            raise EventRejected(rejected)
        return results
