"""The moto a local stack serves: DynamoDB answered through ``wire_attribute_values`` while the stack runs, and
moto's own serialiser again once it stops (local/moto_patches.py); on another moto version, moto as it is."""

from __future__ import annotations

import logging

import moto
import pytest
from moto.core.serialize import JSONSerializer

from local.api_stack import ApiStack
from local.stack import LocalStack

pytestmark = pytest.mark.e2e


def assert_answers_an_item_as_written(stack: ApiStack) -> None:
    table = stack.table_names["ClaimsTable"]
    item = {"PK": {"S": "TEST#1"}, "SK": {"S": "A"}, "nested": {"M": {"list": {"L": [{"N": "1"}, {"NULL": True}]}}}}
    dynamodb = stack.aws_client("dynamodb")
    dynamodb.put_item(TableName=table, Item=item)
    assert dynamodb.get_item(TableName=table, Key={"PK": item["PK"], "SK": item["SK"]})["Item"] == item


def test_a_running_stack_answers_dynamodb_through_wire_attribute_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()  # moto's backends outlive a stopped stack of this process
    monkeypatch.setenv("LOCAL_SWEEP_SECONDS", "0")
    monkeypatch.setenv("LOCAL_EVENTS_POLL_SECONDS", "0")
    moto_serialises = JSONSerializer._serialize_type_structure
    with LocalStack(port=0) as stack:
        assert JSONSerializer._serialize_type_structure.__qualname__.startswith("wire_attribute_values.")
        assert_answers_an_item_as_written(stack)
    assert JSONSerializer._serialize_type_structure is moto_serialises


def test_a_stack_on_another_moto_version_runs_without_the_patch_saying_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`make run` does not depend on a test-speed patch: moto not at the pinned version is slower, not refused."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    moto_serialises = JSONSerializer._serialize_type_structure
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with caplog.at_level(logging.WARNING), ApiStack(port=0, demo_data=None) as stack:
        assert JSONSerializer._serialize_type_structure is moto_serialises
        assert_answers_an_item_as_written(stack)
    assert JSONSerializer._serialize_type_structure is moto_serialises
    [warning] = [record.getMessage() for record in caplog.records if "moto" in record.getMessage()]
    assert "moto 5.3.0 is installed, not 5.2.5" in warning
