"""Whole-store views of the claims: what a DynamoDB table or the memory fake holds, checked against rule 11.

``TableSnapshot`` is a store view (``tests.support.claims.StoreView``) read from one scan of the table;
``MemorySnapshot`` the memory fake's; ``assert_all_counters_match`` checks every counter, guard and claim
of a store against each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mci.adapters import dynamodb_items as items
from mci.adapters.dynamodb_batches import batch_get
from mci.adapters.dynamodb_claims import HOLDER_PREFIX, claim_from_item
from mci.domain.claims import ACTIVE_STATES, Claim
from tests.support.claims import MemoryStoreView, StoredCounter, StoreView, assert_counter_matches_claims

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "ClaimsTable"


class StoredLimits:
    """Claims, counters and guards collected from stored items, and the store-view reads over them."""

    def __init__(self) -> None:
        self.counters: dict[tuple[str, str], StoredCounter] = {}
        self.guards: dict[tuple[str, str, str], str] = {}
        self.claims: list[Claim] = []

    def add_limit_item(self, pk: str, sk: str, values: dict[str, Any]) -> None:
        """A ``LIMIT#<engagement>#<customer>`` item: the counter (``COUNT``) or a partner's guard."""
        _, engagement_id, customer_key = pk.split("#", 2)
        if sk == "COUNT":
            self.counters[(engagement_id, customer_key)] = StoredCounter(
                active_count=int(values["active_count"]),
                version=int(values["version"]),
                holders={name.removeprefix(HOLDER_PREFIX) for name in values if name.startswith(HOLDER_PREFIX)},
            )
        else:
            self.guards[(engagement_id, customer_key, sk.removeprefix("PARTNER#"))] = str(values["claim_id"])

    def counter(self, engagement_id: str, customer_key: str) -> StoredCounter | None:
        return self.counters.get((engagement_id, customer_key))

    def guard(self, engagement_id: str, customer_key: str, partner_id: str) -> str | None:
        return self.guards.get((engagement_id, customer_key, partner_id))

    def claims_of(self, engagement_id: str, customer_key: str) -> list[Claim]:
        return [c for c in self.claims if (c.engagement_id, c.customer_key) == (engagement_id, customer_key)]

    def limit_keys(self) -> set[tuple[str, str]]:
        return {(c.engagement_id, c.customer_key) for c in self.claims} | set(self.counters)

    def guard_entries(self) -> Iterable[tuple[tuple[str, str, str], str]]:
        return self.guards.items()


class TableSnapshot(StoredLimits):
    """Every counter, guard and claim of the claims table, read with one scan (a fresh table per test)."""

    def __init__(self, client: DynamoDBClient, table_name: str = TABLE) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        for page in client.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
            for raw in page["Items"]:
                self._add(raw)

    def without_versions(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every item by key, without the write counters (``version`` of claims and counters)."""
        return {key: {k: v for k, v in values.items() if k != "version"} for key, values in self.items.items()}

    def _add(self, raw: dict[str, Any]) -> None:
        values = items.deserialize(raw)
        pk, sk = str(values["PK"]), str(values["SK"])
        self.items[(pk, sk)] = values
        if values.get("type") == "claim":
            self.claims.append(claim_from_item(raw))
        elif pk.startswith("LIMIT#"):
            self.add_limit_item(pk, sk, values)


class MemorySnapshot(MemoryStoreView):
    """The memory fake's store view, with the keys and guards it holds."""

    def limit_keys(self) -> set[tuple[str, str]]:
        return {(c.engagement_id, c.customer_key) for c in self.repository.claims.values()} | set(
            self.repository.counters
        )

    def guard_entries(self) -> Iterable[tuple[tuple[str, str, str], str]]:
        return self.repository.guards.items()


def assert_all_counters_match(view: StoredLimits | MemorySnapshot) -> None:
    """Rule 11 over the whole store: every counter equals its active claims, and every guard names one of them."""
    checked: StoreView = view
    for engagement_id, customer_key in sorted(view.limit_keys()):
        assert_counter_matches_claims(checked, engagement_id, customer_key)
    for (engagement_id, customer_key, partner_id), claim_id in view.guard_entries():
        active = [
            c.claim_id
            for c in view.claims_of(engagement_id, customer_key)
            if c.partner_id == partner_id and c.state in ACTIVE_STATES
        ]
        assert active == [claim_id], f"guard {engagement_id}/{customer_key}/{partner_id} -> {claim_id}, active {active}"


def stored_claims(client: DynamoDBClient, claim_ids: Iterable[str], table_name: str = TABLE) -> dict[str, Claim]:
    """The claims as stored, by id (strongly consistent batch reads)."""
    found = batch_get(client, table_name, [items.claim_key(c) for c in set(claim_ids)], consistent=True)
    return {c.claim_id: c for c in (claim_from_item(i) for i in found)}
