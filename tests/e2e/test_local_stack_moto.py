"""The moto a local stack serves: DynamoDB answered through ``wire_attribute_values`` while the stack runs, and
moto's own serialiser again once it stops (local/moto_patches.py)."""

from __future__ import annotations

import pytest
from moto.core.serialize import JSONSerializer

from local.stack import LocalStack

pytestmark = pytest.mark.e2e


def test_a_running_stack_answers_dynamodb_through_wire_attribute_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()  # moto's backends outlive a stopped stack of this process
    monkeypatch.setenv("LOCAL_SWEEP_SECONDS", "0")
    monkeypatch.setenv("LOCAL_EVENTS_POLL_SECONDS", "0")
    moto_serialises = JSONSerializer._serialize_type_structure
    with LocalStack(port=0) as stack:
        assert JSONSerializer._serialize_type_structure.__qualname__.startswith("wire_attribute_values.")
        table = stack.table_names["ClaimsTable"]
        item = {"PK": {"S": "TEST#1"}, "SK": {"S": "A"}, "nested": {"M": {"list": {"L": [{"N": "1"}, {"NULL": True}]}}}}
        dynamodb = stack.aws_client("dynamodb")
        dynamodb.put_item(TableName=table, Item=item)
        assert dynamodb.get_item(TableName=table, Key={"PK": item["PK"], "SK": item["SK"]})["Item"] == item
    assert JSONSerializer._serialize_type_structure is moto_serialises
