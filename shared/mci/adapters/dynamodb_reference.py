"""Reference data in DynamoDB: engagements, locations, customer records and domains."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mci.adapters import dynamodb_items as items
from mci.adapters.aws import dependency
from mci.adapters.dynamodb_batches import batch_get, batch_write, query_all
from mci.domain.identifiers import Identifier
from mci.domain.reference import CustomerRecord, DomainRecord, Engagement, Location, ReferenceData

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef


def engagement_from_item(item: items.Item) -> Engagement:
    return Engagement.model_validate(items.strip_keys(items.deserialize(item)))


def location_from_item(item: items.Item) -> Location:
    return Location.model_validate(items.strip_keys(items.deserialize(item)))


def customer_from_item(item: items.Item) -> CustomerRecord:
    return CustomerRecord.model_validate(items.strip_keys(items.deserialize(item)))


def domain_from_item(item: items.Item) -> DomainRecord:
    return DomainRecord.model_validate(items.strip_keys(items.deserialize(item)))


class DynamoDBReferenceRepository:
    # The client operations it calls (mci.snapstart primes each; tests/moto/test_iam_least_privilege.py checks).
    AWS_CALLS: ClassVar[tuple[str, ...]] = (
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
    )

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def list_engagements(self) -> list[Engagement]:
        with dependency("DynamoDB"):
            found = query_all(
                self._client,
                TableName=self._table,
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues={":pk": {"S": "REF#ENGAGEMENT"}},
            )
        return [engagement_from_item(i) for i in found]

    def get_engagements(self, engagement_ids: Sequence[str]) -> dict[str, Engagement]:
        with dependency("DynamoDB"):
            found = batch_get(self._client, self._table, [items.engagement_key(e) for e in set(engagement_ids)])
        engagements = (engagement_from_item(i) for i in found)
        return {e.engagement_id: e for e in engagements}

    def get_location(self, location_id: str) -> Location | None:
        with dependency("DynamoDB"):
            found = self._client.get_item(TableName=self._table, Key=items.location_key(location_id))
        item = found.get("Item")
        return location_from_item(item) if item else None

    def list_locations(self, partner_id: str) -> list[Location]:
        with dependency("DynamoDB"):
            found = query_all(
                self._client,
                TableName=self._table,
                IndexName="GSI1",
                KeyConditionExpression="GSI1PK = :pk",
                ExpressionAttributeValues={":pk": {"S": items.partner_locations_pk(partner_id)}},
            )
        return [location_from_item(i) for i in found]

    def get_customer(self, identifier: Identifier) -> CustomerRecord | None:
        with dependency("DynamoDB"):
            found = self._client.get_item(TableName=self._table, Key=items.customer_key(identifier.key))
        item = found.get("Item")
        return customer_from_item(item) if item else None

    def get_customers(self, identifiers: Sequence[Identifier]) -> dict[str, CustomerRecord]:
        """Customer records by identifier key, in one batch read."""
        with dependency("DynamoDB"):
            found = batch_get(self._client, self._table, [items.customer_key(k) for k in {i.key for i in identifiers}])
        records = (customer_from_item(i) for i in found)
        return {r.identifier.key: r for r in records}

    def tenants_of_domains(self, domains: Sequence[str]) -> dict[str, str]:
        with dependency("DynamoDB"):
            found = batch_get(self._client, self._table, [items.domain_key(d) for d in set(domains)])
        records = (domain_from_item(i) for i in found)
        return {r.domain: r.tenant_id for r in records}

    def save(self, data: ReferenceData) -> dict[str, int]:
        """Upsert every record by its id (BatchWriteItem, 25 at a time, unprocessed items retried)."""
        with dependency("DynamoDB"):
            batch_write(self._client, self._table, list(self._puts(data)))
        return {
            "engagements": len(data.engagements),
            "locations": len(data.locations),
            "customers": len(data.customers),
            "domains": len(data.domains),
        }

    def _puts(self, data: ReferenceData) -> Iterator[WriteRequestTypeDef]:
        def put(key: items.Item, kind: str, values: dict[str, Any]) -> WriteRequestTypeDef:
            return {"PutRequest": {"Item": {**key, "type": {"S": kind}, **items.serialize(values)}}}

        for engagement in data.engagements:
            yield put(
                items.engagement_key(engagement.engagement_id),
                "engagement",
                items.model_attributes(engagement),
            )
        for location in data.locations:
            yield put(
                items.location_key(location.location_id),
                "location",
                {
                    **items.model_attributes(location),
                    "GSI1PK": items.partner_locations_pk(location.partner_id),
                    "GSI1SK": f"LOC#{location.location_id}",
                },
            )
        for customer in data.customers:
            yield put(items.customer_key(customer.identifier.key), "customer", items.model_attributes(customer))
        for domain in data.domains:
            yield put(items.domain_key(domain.domain), "domain", items.model_attributes(domain))
