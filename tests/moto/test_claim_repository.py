"""The ClaimRepository contract on moto, and rule 11's race through add_customer on moto in server mode."""

from __future__ import annotations

import logging
import urllib.request
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from moto.server import ThreadedMotoServer

from local.atomic_moto import atomic_dynamodb_requests
from local.cloudformation import create_tables
from local.moto_patches import lean_moto
from mci.adapters.dynamodb_claims import DynamoDBClaimRepository
from mci.adapters.dynamodb_lookups import DynamoDBLookups
from mci.adapters.dynamodb_reference import DynamoDBReferenceRepository
from mci.domain.clock import FixedClock
from tests.support import dynamodb_local
from tests.support.claim_repository_contract import Backend, DynamoDBClaimRepositoryContract
from tests.support.claims import (
    DynamoDBStoreView,
    assert_race_held_the_limit,
    dynamodb_nominations,
    race_add_customer,
    race_reference_data,
)
from tests.support.reference import NOW

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "ClaimsTable"


@pytest.fixture
def atomic_moto_requests() -> Iterator[None]:
    """DynamoDB applies each request atomically; moto does not, so each of its requests runs alone, with the
    local stack's mechanism (local/atomic_moto.py, which says what moto does without it).

    Threads still interleave between requests (read, decide, transact), which is the race rule 11 is about.
    """
    with atomic_dynamodb_requests():
        yield


class TestMotoClaimRepository(DynamoDBClaimRepositoryContract):
    @pytest.fixture
    def backend(self, dynamodb: DynamoDBClient, monkeypatch: pytest.MonkeyPatch) -> Backend:
        # Single-threaded: a transaction backs up only the partitions it names (the contract's 100-write add
        # otherwise deep-copies the whole table once per write), as the handler tests on moto do.
        lean_moto(monkeypatch)
        return Backend(
            repository=DynamoDBClaimRepository(dynamodb, TABLE),
            view=DynamoDBStoreView(dynamodb, TABLE),
            reference=DynamoDBReferenceRepository(dynamodb, TABLE),
            lookups=DynamoDBLookups(dynamodb, TABLE),
        )


@pytest.fixture
def moto_server(aws_environment: None) -> Iterator[str]:
    """moto in server mode on a free loopback port: in-process mock_aws is not safe across threads."""
    port = dynamodb_local.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # one access-log line per request otherwise
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        yield endpoint
    finally:
        request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        server.stop()
        werkzeug.setLevel(level)


@pytest.mark.usefixtures("atomic_moto_requests")
def test_fifty_simultaneous_adds_respect_the_limit_on_moto_server(moto_server: str) -> None:
    client = dynamodb_local.client(moto_server, pool=64)
    tables = create_tables(client, names={"ClaimsTable": f"ClaimsTable-{uuid.uuid4().hex[:12]}"})
    nominations = dynamodb_nominations(client, tables["ClaimsTable"], FixedClock(NOW))
    nominations.reference.save(race_reference_data())

    outcome = race_add_customer(nominations)

    assert_race_held_the_limit(outcome, DynamoDBStoreView(client, tables["ClaimsTable"]))
