"""Domain events onto the service's EventBridge bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mci.adapters.aws import dependency
from mci.domain.events import SOURCE, DomainEvent

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

BATCH = 10  # PutEvents takes at most ten entries


class EventBridgeBus:
    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, events: Sequence[DomainEvent]) -> list[bool]:
        results: list[bool] = []
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
            results.extend("ErrorCode" not in entry for entry in response.get("Entries", []))
            if len(results) < start + len(chunk):
                results.extend([False] * (start + len(chunk) - len(results)))
        return results
