"""The handler tier: real handlers, real events, DynamoDB tables from template.yaml on moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from local.cloudformation import create_tables
from local.moto_patches import wire_attribute_values
from mci import wiring
from mci.domain.clock import FixedClock
from tests.support.reference import demo_data

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@pytest.fixture
def dynamodb(aws_environment: None) -> Iterator[DynamoDBClient]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client)
        wiring.reset()
        yield client


@pytest.fixture
def seeded(dynamodb: DynamoDBClient, clock: FixedClock) -> DynamoDBClient:
    wiring.services().reference.save(demo_data())
    return dynamodb


@pytest.fixture(autouse=True)
def _wire_attribute_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto answers DynamoDB with the same bytes, without walking each attribute value member by member."""
    wire_attribute_values(monkeypatch)
