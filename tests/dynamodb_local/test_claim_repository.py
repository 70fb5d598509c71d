"""The ClaimRepository contract on DynamoDB Local, and rule 11's race through add_customer on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from mci.adapters.dynamodb_claims import DynamoDBClaimRepository
from mci.adapters.dynamodb_lookups import DynamoDBLookups
from mci.adapters.dynamodb_reference import DynamoDBReferenceRepository
from mci.domain.clock import FixedClock
from tests.support.claim_repository_contract import Backend, DynamoDBClaimRepositoryContract
from tests.support.claims import (
    DynamoDBStoreView,
    assert_expired_once,
    assert_race_held_the_limit,
    dynamodb_nominations,
    race_add_customer,
    race_reference_data,
    seed_overdue_claim,
)
from tests.support.reference import NOW

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.dynamodb_local


class TestDynamoDBLocalClaimRepository(DynamoDBClaimRepositoryContract):
    @pytest.fixture
    def backend(self, dynamodb_local_client: DynamoDBClient, dynamodb_local_tables: dict[str, str]) -> Backend:
        table = dynamodb_local_tables["ClaimsTable"]
        return Backend(
            repository=DynamoDBClaimRepository(dynamodb_local_client, table),
            view=DynamoDBStoreView(dynamodb_local_client, table),
            reference=DynamoDBReferenceRepository(dynamodb_local_client, table),
            lookups=DynamoDBLookups(dynamodb_local_client, table),
        )


def test_fifty_simultaneous_adds_respect_the_limit(
    dynamodb_local_client: DynamoDBClient, dynamodb_local_tables: dict[str, str]
) -> None:
    table = dynamodb_local_tables["ClaimsTable"]
    nominations = dynamodb_nominations(dynamodb_local_client, table, FixedClock(NOW))
    nominations.reference.save(race_reference_data())

    outcome = race_add_customer(nominations)

    assert_race_held_the_limit(outcome, DynamoDBStoreView(dynamodb_local_client, table))
    assert not outcome.unavailable, f"retries exhausted on the real engine: {outcome.summary()}"


def test_fifty_simultaneous_adds_expire_an_overdue_claim_exactly_once(
    dynamodb_local_client: DynamoDBClient, dynamodb_local_tables: dict[str, str]
) -> None:
    table = dynamodb_local_tables["ClaimsTable"]
    clock = FixedClock(NOW)
    nominations = dynamodb_nominations(dynamodb_local_client, table, clock)
    nominations.reference.save(race_reference_data())
    overdue = seed_overdue_claim(nominations, clock)

    outcome = race_add_customer(nominations)

    view = DynamoDBStoreView(dynamodb_local_client, table)
    assert_race_held_the_limit(outcome, view)
    assert not outcome.unavailable, f"retries exhausted on the real engine: {outcome.summary()}"
    assert_expired_once(view, overdue)
