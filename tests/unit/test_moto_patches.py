"""The moto speed patches answer as moto does, are tied to the moto version they patch, and refuse any other loudly."""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Any

import moto
import pytest
from moto.core.serialize import JSONSerializer, XFormedAttributePicker
from moto.core.utils import get_service_model
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import Item

from local import moto_patches
from local.moto_patches import (
    PATCHED_MOTO_VERSION,
    MotoVersionMismatch,
    check_moto_version,
    lean_moto,
    wire_attribute_value,
    wire_attribute_values,
    wire_attribute_values_installed,
)

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements-dev.txt"
ORIGINAL_SERIALIZE_STRUCTURE = JSONSerializer._serialize_type_structure


def test_the_patched_version_is_the_pinned_and_installed_moto() -> None:
    pinned = re.search(r"^moto\[[^\]]*\]==(\S+)$", REQUIREMENTS.read_text(), re.MULTILINE)
    assert pinned is not None, "requirements-dev.txt must pin moto exactly"
    assert pinned.group(1) == PATCHED_MOTO_VERSION
    assert moto.__version__ == PATCHED_MOTO_VERSION
    check_moto_version()


def test_another_moto_version_is_refused_naming_both_versions() -> None:
    with pytest.raises(MotoVersionMismatch, match=r"patches moto 5\.2\.5 internals but moto 5\.3\.0 is installed"):
        check_moto_version("5.3.0")


def test_lean_moto_patches_nothing_on_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    transact, item_init = DynamoDBBackend.transact_write_items, Item.__init__
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(MotoVersionMismatch):
        lean_moto(monkeypatch)
    assert DynamoDBBackend.transact_write_items is transact
    assert Item.__init__ is item_init


def test_lean_moto_installs_both_patches_and_the_patcher_undoes_them() -> None:
    transact, item_init = DynamoDBBackend.transact_write_items, Item.__init__
    patch = pytest.MonkeyPatch()
    lean_moto(patch)
    try:
        assert DynamoDBBackend.transact_write_items is not transact
        assert Item.__init__ is moto_patches._item_init
    finally:
        patch.undo()
    assert DynamoDBBackend.transact_write_items is transact
    assert Item.__init__ is item_init


# Every kind of attribute value, nested and at the top, with the edge cases moto's own serialiser must keep:
# binary values (base64), an empty map key, an empty string, an empty list.
EVERY_ATTRIBUTE_VALUE = {
    "PK": {"S": "CLAIM#1"},
    "empty": {"S": ""},
    "count": {"N": "42"},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "tags": {"SS": ["a", "b"]},
    "sizes": {"NS": ["1", "2.5"]},
    "blob": {"B": b"\x00\xff"},
    "blobs": {"BS": [b"\x01", b"\x02"]},
    "history": {"L": [{"M": {"to": {"S": "pending"}, "at": {"N": "1"}}}, {"L": []}, {"B": b"\x03"}]},
    "nested": {"M": {"inner": {"M": {"deep": {"SS": ["x"]}}}, "": {"S": "empty key"}}},
    "plain": {"M": {"a": {"S": "b"}, "c": {"L": [{"N": "1"}, {"BOOL": True}]}}},
}


def serialized_by_moto(operation: str, result: dict[str, Any]) -> str:
    """The response body moto writes for ``result`` of a DynamoDB operation (as ``ActionResult`` does)."""
    operation_model = get_service_model("dynamodb").operation_model(operation)
    serializer = JSONSerializer(operation_model=operation_model, value_picker=XFormedAttributePicker())
    return str(serializer.serialize(result)["body"])


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("GetItem", {"Item": EVERY_ATTRIBUTE_VALUE}),
        ("Query", {"Items": [EVERY_ATTRIBUTE_VALUE, {"PK": {"S": "CLAIM#2"}}], "Count": 2, "ScannedCount": 2}),
        ("TransactGetItems", {"Responses": [{"Item": EVERY_ATTRIBUTE_VALUE}]}),
    ],
)
def test_wire_attribute_values_serialise_every_response_to_the_same_bytes(operation: str, result: Any) -> None:
    as_moto_writes_it = serialized_by_moto(operation, copy.deepcopy(result))
    patch = pytest.MonkeyPatch()
    wire_attribute_values(patch)
    try:
        assert JSONSerializer._serialize_type_structure is not ORIGINAL_SERIALIZE_STRUCTURE
        assert serialized_by_moto(operation, copy.deepcopy(result)) == as_moto_writes_it
    finally:
        patch.undo()
    assert JSONSerializer._serialize_type_structure is ORIGINAL_SERIALIZE_STRUCTURE


def test_wire_attribute_values_copy_wire_values_and_leave_the_rest_to_moto() -> None:
    assert wire_attribute_value({"M": {"a": {"L": [{"S": "b"}, {"NULL": True}]}}}) == {
        "M": {"a": {"L": [{"S": "b"}, {"NULL": True}]}}
    }
    for moto_serialises_it in (
        {"B": b"\x00"},
        {"BS": [b"\x00"]},
        {"L": [{"S": "a"}, {"B": b"\x00"}]},
        {"M": {"": {"S": "a"}}},
        {"S": "a", "N": "1"},
        {"N": 1},
        "not an attribute value",
    ):
        assert wire_attribute_value(moto_serialises_it) is None, moto_serialises_it


def test_wire_attribute_values_patches_nothing_on_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(MotoVersionMismatch):
        wire_attribute_values(monkeypatch)
    assert JSONSerializer._serialize_type_structure is ORIGINAL_SERIALIZE_STRUCTURE


def test_wire_attribute_values_installed_holds_for_its_block_and_nests_with_monkeypatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with wire_attribute_values_installed():
        installed = JSONSerializer._serialize_type_structure
        assert installed is not ORIGINAL_SERIALIZE_STRUCTURE
        with wire_attribute_values_installed():
            assert JSONSerializer._serialize_type_structure is not installed
        assert JSONSerializer._serialize_type_structure is installed
        assert serialized_by_moto("GetItem", {"Item": {"PK": {"S": "a"}}}) == '{"Item": {"PK": {"S": "a"}}}'
    assert JSONSerializer._serialize_type_structure is ORIGINAL_SERIALIZE_STRUCTURE
    assert "_serialize_type_structure" not in vars(JSONSerializer)  # inherited again, as moto defines it


def test_wire_attribute_values_installed_on_another_moto_version_warns_once_and_leaves_moto_as_it_is(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The local stack (``make run``) runs on any moto: without its speed patch, slower, saying so on one line."""
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with caplog.at_level(logging.WARNING, logger="local.moto_patches"), wire_attribute_values_installed():
        assert JSONSerializer._serialize_type_structure is ORIGINAL_SERIALIZE_STRUCTURE
        assert serialized_by_moto("GetItem", {"Item": {"PK": {"S": "a"}}}) == '{"Item": {"PK": {"S": "a"}}}'
    assert JSONSerializer._serialize_type_structure is ORIGINAL_SERIALIZE_STRUCTURE
    [warning] = [record for record in caplog.records if record.name == "local.moto_patches"]
    assert warning.levelno == logging.WARNING
    message = warning.getMessage()
    assert "\n" not in message
    assert "moto 5.3.0 is installed, not 5.2.5" in message
    assert "slower" in message


def test_the_stack_stopping_inside_a_later_monkeypatch_leaves_that_patch_and_then_moto_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Patches.undo`` restores only what is still its own; a patch of its that a later patcher puts back is spent."""
    monkeypatch.setattr(JSONSerializer, "_serialize_type_structure", ORIGINAL_SERIALIZE_STRUCTURE)  # cleans up after

    def a_test_patch(*args: Any) -> None:
        raise AssertionError("not called")

    later = pytest.MonkeyPatch()
    with wire_attribute_values_installed():  # the stack starts
        later.setattr(JSONSerializer, "_serialize_type_structure", a_test_patch)  # a test patches moto's serialiser
    # The stack has stopped: the test's patch stays until the test undoes it.
    try:
        assert JSONSerializer._serialize_type_structure is a_test_patch
    finally:
        later.undo()

    # monkeypatch put back what it replaced, the stack's patch, which now leaves every value to moto's serialiser.
    def never(value: Any) -> None:
        raise AssertionError(f"the stopped stack's patch still copied {value!r}")

    monkeypatch.setattr(moto_patches, "wire_attribute_value", never)
    assert serialized_by_moto("GetItem", {"Item": {"PK": {"S": "a"}}}) == '{"Item": {"PK": {"S": "a"}}}'


def test_patches_undo_restores_only_what_is_still_its_own() -> None:
    class Target:
        name = "class"

    patches, later = moto_patches.Patches(), pytest.MonkeyPatch()
    patches.setattr(Target, "name", "patched")
    patches.setattr(Target, "name", "patched twice")
    later.setattr(Target, "name", "a later patch")
    patches.undo()
    assert Target.name == "a later patch"
    later.undo()
    assert vars(Target)["name"] == "patched twice"  # what the later patcher replaced

    patches.setattr(Target, "other", "patched")
    patches.setattr(Target, "name", "patched again")
    patches.undo()
    assert Target.name == "patched twice"
    assert not hasattr(Target, "other")
