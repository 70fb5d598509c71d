"""Reads whose keys are known at the same moment, in one BatchGetItem across reference data and claims."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from mci.adapters import dynamodb_items as items
from mci.adapters.aws import dependency
from mci.adapters.dynamodb_batches import batch_get
from mci.adapters.dynamodb_claims import known_customer_from_item, limit_snapshot, referral_from_item
from mci.adapters.dynamodb_reference import (
    customer_from_item,
    domain_from_item,
    engagement_from_item,
    location_from_item,
)
from mci.domain.ports import Found, KnownCustomer, LimitKeys, LimitSnapshot, Lookup

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.reference import CustomerRecord, Engagement, Location
    from mci.domain.referrals import Referral


class DynamoDBLookups:
    """Every item of a Lookup lives in the one table, so one BatchGetItem reads them all (100 keys a request)."""

    # The client operations it calls (mci.snapstart primes each; tests/moto/test_iam_least_privilege.py checks).
    AWS_CALLS: ClassVar[tuple[str, ...]] = ("dynamodb:BatchGetItem",)

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def look_up(self, lookup: Lookup) -> Found:
        # What each key is for, by (PK, SK): one BatchGetItem may not name a key twice.
        wanted: dict[tuple[str, str], Callable[[items.Item], None]] = {}
        found = _Collected()

        def want(key: items.Item, use: Callable[[items.Item], None]) -> None:
            wanted.setdefault((str(key["PK"]["S"]), str(key["SK"]["S"])), use)

        if lookup.location_id is not None:
            want(items.location_key(lookup.location_id), found.location)
        for engagement_id in lookup.engagement_ids:
            want(items.engagement_key(engagement_id), found.engagement)
        for domain in lookup.domains:
            want(items.domain_key(domain), found.domain)
        for identifier in lookup.customers:
            want(items.customer_key(identifier.key), found.customer)
        for limits in lookup.limits:
            found.expect(limits)
            for engagement_id in limits.engagement_ids:
                counter = items.counter_key(engagement_id, limits.customer_key)
                guard = items.guard_key(engagement_id, limits.customer_key, limits.partner_id)
                want(counter, found.counter(limits.customer_key, engagement_id))
                want(guard, found.guard(limits.customer_key, engagement_id, limits.partner_id))
        if lookup.known_customer is not None:
            want(items.known_customer_key(*lookup.known_customer), found.known_customer)
        if lookup.referral_id is not None:
            want(items.referral_key(lookup.referral_id), found.referral)
        if not wanted:
            return Found()
        keys: list[items.Item] = [{"PK": {"S": pk}, "SK": {"S": sk}} for pk, sk in wanted]
        with dependency("DynamoDB"):
            read = batch_get(self._client, self._table, keys, consistent=bool(lookup.limits))
        for item in read:
            wanted[(str(item["PK"]["S"]), str(item["SK"]["S"]))](item)
        return found.result()


class _Collected:
    """The items of one BatchGetItem, each parsed as what its key was asked for."""

    def __init__(self) -> None:
        self.location_found: Location | None = None
        self.engagements: dict[str, Engagement] = {}
        self.tenants: dict[str, str] = {}
        self.customers: dict[str, CustomerRecord] = {}
        self.known_found: KnownCustomer | None = None
        self.referral_found: Referral | None = None
        self.counters: dict[tuple[str, str], dict[str, Any]] = {}
        self.guards: dict[tuple[str, str, str], str] = {}
        self.limits: list[LimitKeys] = []

    def location(self, item: items.Item) -> None:
        self.location_found = location_from_item(item)

    def engagement(self, item: items.Item) -> None:
        engagement = engagement_from_item(item)
        self.engagements[engagement.engagement_id] = engagement

    def domain(self, item: items.Item) -> None:
        record = domain_from_item(item)
        self.tenants[record.domain] = record.tenant_id

    def customer(self, item: items.Item) -> None:
        record = customer_from_item(item)
        self.customers[record.identifier.key] = record

    def known_customer(self, item: items.Item) -> None:
        self.known_found = known_customer_from_item(item)

    def referral(self, item: items.Item) -> None:
        self.referral_found = referral_from_item(item)

    def expect(self, limits: LimitKeys) -> None:
        self.limits.append(limits)

    def counter(self, customer_key: str, engagement_id: str) -> Callable[[items.Item], None]:
        def keep(item: items.Item) -> None:
            self.counters[(customer_key, engagement_id)] = items.deserialize(item)

        return keep

    def guard(self, customer_key: str, engagement_id: str, partner_id: str) -> Callable[[items.Item], None]:
        def keep(item: items.Item) -> None:
            self.guards[(customer_key, engagement_id, partner_id)] = str(items.deserialize(item)["claim_id"])

        return keep

    def result(self) -> Found:
        limits: dict[str, dict[str, LimitSnapshot]] = {}
        for keys in self.limits:
            for engagement_id in keys.engagement_ids:
                limits.setdefault(keys.customer_key, {})[engagement_id] = limit_snapshot(
                    engagement_id,
                    keys.customer_key,
                    self.counters.get((keys.customer_key, engagement_id)),
                    self.guards.get((keys.customer_key, engagement_id, keys.partner_id)),
                )
        return Found(
            location=self.location_found,
            engagements=self.engagements,
            tenants=self.tenants,
            customers=self.customers,
            limits=limits,
            known_customer=self.known_found,
            referral=self.referral_found,
        )
