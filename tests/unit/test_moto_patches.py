"""The moto speed patches are tied to the moto version they patch, and refuse any other loudly."""

from __future__ import annotations

import re
from pathlib import Path

import moto
import pytest
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import Item

from local import moto_patches
from local.moto_patches import PATCHED_MOTO_VERSION, MotoVersionMismatch, check_moto_version, lean_moto

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements-dev.txt"


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
