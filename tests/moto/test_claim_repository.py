"""The ClaimRepository contract on moto, and rule 11's race through add_customer on moto in server mode."""

from __future__ import annotations

import logging
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer

from local.cloudformation import create_tables
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

# Observed with moto 5.2.5 (see docs/testing.md, "Known limits of moto"): TransactWriteItems in server
# mode takes no lock. It checks and writes item by item, and on a cancelled transaction restores a
# deepcopy of the whole table taken when it began, so concurrent transactions interleave and a
# rollback can resurrect or erase another thread's writes; the deepcopy itself races
# ("RuntimeError: dictionary changed size during iteration", moto/dynamodb/models/__init__.py:613,
# answered as HTTP 500). In 6 of 12 runs of the race below: 3 or 4 pending claims stored against a
# counter of 2, and once 3 add_customer calls reported success. DynamoDB Local proves rule 11.
_ONE_REQUEST_AT_A_TIME = threading.Lock()


@pytest.fixture
def atomic_moto_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each request atomically; moto does not, so each of its requests runs alone.

    Threads still interleave between requests (read, decide, transact), which is the race rule 11 is about.
    """
    original = DynamoHandler.call_action

    def call_action(self: DynamoHandler) -> Any:
        with _ONE_REQUEST_AT_A_TIME:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)


class TestMotoClaimRepository(DynamoDBClaimRepositoryContract):
    @pytest.fixture
    def backend(self, dynamodb: DynamoDBClient) -> Backend:
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
