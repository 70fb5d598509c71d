"""Paginated queries and batch reads and writes that finish the unprocessed remainder."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from mci.domain.errors import DependencyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import KeysAndAttributesTypeDef, WriteRequestTypeDef

    from mci.adapters.dynamodb_items import Item

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
MAX_ROUNDS = 6


def query_all(client: DynamoDBClient, **kwargs: Any) -> list[Item]:
    found: list[Item] = []
    while True:
        page = client.query(**kwargs)
        found.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def batch_get(client: DynamoDBClient, table: str, keys: Sequence[Item], *, consistent: bool = False) -> list[Item]:
    found: list[Item] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        pending: dict[str, KeysAndAttributesTypeDef] = {
            table: {"Keys": list(keys[start : start + BATCH_GET_LIMIT]), "ConsistentRead": consistent}
        }
        for attempt in range(MAX_ROUNDS):
            page = client.batch_get_item(RequestItems=pending)
            found.extend(page.get("Responses", {}).get(table, []))
            unprocessed = page.get("UnprocessedKeys") or {}
            if not unprocessed:
                break
            pending = cast("dict[str, KeysAndAttributesTypeDef]", unprocessed)
            time.sleep(0.05 * 2**attempt)
        else:
            raise DependencyUnavailable("DynamoDB left part of a batch read unprocessed; retry shortly.")
    return found


def batch_write(client: DynamoDBClient, table: str, requests: Sequence[WriteRequestTypeDef]) -> None:
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending: dict[str, Sequence[WriteRequestTypeDef]] = {table: requests[start : start + BATCH_WRITE_LIMIT]}
        for attempt in range(MAX_ROUNDS):
            page = client.batch_write_item(RequestItems=pending)
            unprocessed = page.get("UnprocessedItems") or {}
            if not unprocessed:
                break
            pending = cast("dict[str, Sequence[WriteRequestTypeDef]]", unprocessed)
            time.sleep(0.05 * 2**attempt)
        else:
            raise DependencyUnavailable("DynamoDB left part of a batch write unprocessed; retry shortly.")
