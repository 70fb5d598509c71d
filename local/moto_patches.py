"""moto's DynamoDB made cheaper without changing what it answers, for the moto version they were written for.

Two speed patches of moto internals, shared by the handler tests (``lean_moto(monkeypatch)``) and the
bench's in-process world:

- ``TouchedPartitionsBackup``: a transaction backs up only the partitions it names, not whole tables;
- ``_item_init``: a new item is measured once against the 400 KB limit, not once per attribute.

A third, for the handler tier (``tests/moto/conftest.py``) and the local stack while it runs
(``wire_attribute_values_installed``, which skips it with one warning on another moto version: ``make run``
works on any moto, only slower); the bench keeps measuring moto as it is:

- ``wire_attribute_values``: moto's response serialiser copies DynamoDB attribute values that are already in
  their wire form instead of looking up each of their ten members through its alias machinery. It changes no
  byte of an answer and keeps no state, so threads (moto in server mode) may share it.

They replace private parts of moto, so they are tied to one moto version: ``PATCHED_MOTO_VERSION``, the
pin in requirements-dev.txt. ``lean_moto`` refuses any other version (``MotoVersionMismatch``) instead of
silently patching code that may have changed: re-read the patched moto functions, then update the pin here.
Single-threaded use only (moto takes no lock either way; ``local/atomic_moto.py`` is the threaded story).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import moto
import moto.dynamodb.models as dynamodb_models
from moto.core.serialize import JSONSerializer
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.utilities import bytesize

PATCHED_MOTO_VERSION = "5.2.5"  # requirements-dev.txt pins moto==5.2.5; the patches below read its internals
ITEM_SIZE_LIMIT = 405_000  # moto's (DynamoDB's 400 KB, as moto measures it)

log = logging.getLogger("local.moto_patches")


class MotoVersionMismatch(RuntimeError):
    """The installed moto is not the version the patches were written for."""


class Patcher(Protocol):
    """What the patches need to install and be undone: ``pytest.MonkeyPatch`` is one."""

    def setattr(self, target: Any, name: str, value: Any) -> None: ...


def check_moto_version(installed: str | None = None) -> None:
    """Fail loudly unless ``installed`` (moto's own ``__version__`` by default) is the patched version."""
    found = moto.__version__ if installed is None else installed
    if found != PATCHED_MOTO_VERSION:
        raise MotoVersionMismatch(
            f"local/moto_patches.py patches moto {PATCHED_MOTO_VERSION} internals but moto {found} is installed: "
            "check DynamoDBBackend.transact_write_items, Item.__init__ and JSONSerializer._serialize_type_structure of "
            "the new version, then update "
            "PATCHED_MOTO_VERSION (or the pin in requirements-dev.txt)"
        )


class TouchedPartitionsBackup:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend, to make its transactions cheap.

    moto 5.2 backs up a whole table with ``copy.deepcopy`` once per item of every TransactWriteItems
    call, so it can restore the table if the transaction is cancelled. That costs ~0.2 s per
    transaction once a table holds reference data, claims and stream records, and dominates these
    tests. A transaction can only change the partitions it names, so this backup deep-copies those and
    shares the rest: the same rollback for everything the transaction can touch, in a few
    microseconds. Only for single-threaded tests (moto takes no lock either way).
    """

    def __init__(self) -> None:
        self.touched: dict[str, set[Any]] = {}

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            return self._backup(value)
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def _backup(self, table: Table) -> Table:
        clone = copy.copy(table)
        clone.items = defaultdict(dict, table.items)  # a dict copy reuses the stored hashes: no DynamoType hashing
        for hash_value in self.touched.get(table.name, set()):
            if hash_value in table.items:
                clone.items[hash_value] = copy.deepcopy(table.items[hash_value])
        if table.stream_shard is not None:
            shard = copy.copy(table.stream_shard)
            shard.items = list(table.stream_shard.items)
            clone.stream_shard = shard
        return clone

    def install(self, patcher: Patcher) -> None:
        original = DynamoDBBackend.transact_write_items
        backup = self

        def transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
            backup.touched = {}
            for item in transact_items:
                for operation in item.values():
                    table = backend.tables.get(operation.get("TableName"))
                    key = operation.get("Key") or operation.get("Item") or {}
                    if table is not None and table.hash_key_attr in key:
                        backup.touched.setdefault(table.name, set()).add(DynamoType(key[table.hash_key_attr]))
            original(backend, transact_items)

        patcher.setattr(dynamodb_models, "copy", self)
        patcher.setattr(DynamoDBBackend, "transact_write_items", transact_write_items)


def _item_init(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]) -> None:
    """moto's ``Item.__init__`` with the 400 KB check done once per item.

    moto sets attributes one by one on a ``LimitedSizeDict`` that re-measures the whole item at every
    set, which is quadratic in the number of attributes and dominates writing thousands of claims.
    Same attributes, same limit, same error.
    """
    self.hash_key = hash_key
    self.range_key = range_key
    values = {key: DynamoType(value) for key, value in attrs.items()}
    if sum(bytesize(key) + value.size() for key, value in values.items()) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    self.attrs = LimitedSizeDict()
    dict.update(self.attrs, values)


# AttributeValue members whose JSON form is their value: moto's string serialiser only str()s a str, its boolean
# one keeps a bool. B and BS (base64) and anything unexpected go through moto's own serialiser.
STRING_MEMBERS = frozenset({"S", "N"})
BOOLEAN_MEMBERS = frozenset({"BOOL", "NULL"})
STRING_SET_MEMBERS = frozenset({"SS", "NS"})


def wire_attribute_value(value: Any) -> dict[str, Any] | None:
    """The JSON moto would write for one DynamoDB ``AttributeValue`` already in wire form, or None to let moto do it.

    moto (``JSONSerializer``) walks every attribute value member by member: ten members, each looked up through
    six alias providers, about a third of a handler test's CPU. A value moto's DynamoDB responses hold in wire
    form ({"S": "..."}, {"M": {...}}, ...) serialises to itself; this returns that copy and None for anything
    else (binary values, which moto base64-encodes, several members, an empty map key), which moto then
    serialises as before.
    """
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((member, inner),) = value.items()
    if member in STRING_MEMBERS:
        return {member: inner} if isinstance(inner, str) else None
    if member in BOOLEAN_MEMBERS:
        return {member: inner} if isinstance(inner, bool) else None
    if member in STRING_SET_MEMBERS:
        if isinstance(inner, list) and all(isinstance(element, str) for element in inner):
            return {member: list(inner)}
        return None
    if member == "M" and isinstance(inner, dict):
        entries = {name: wire_attribute_value(nested) for name, nested in inner.items()}
        if all(isinstance(name, str) and name for name in entries) and None not in entries.values():
            return {member: entries}
        return None
    if member == "L" and isinstance(inner, list):
        elements = [wire_attribute_value(nested) for nested in inner]
        return {member: elements} if None not in elements else None
    return None


def wire_attribute_values(patcher: Patcher, *, enabled: Callable[[], bool] = lambda: True) -> None:
    """moto's JSON serialiser copies wire-form DynamoDB attribute values (``wire_attribute_value``); same bytes.

    While ``enabled()`` is false the patch hands every value to moto's own serialiser. Raises
    ``MotoVersionMismatch`` before patching anything when moto is not ``PATCHED_MOTO_VERSION``.
    """
    check_moto_version()
    original = JSONSerializer._serialize_type_structure

    def serialize_structure(serializer: JSONSerializer, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and enabled():
            wire = wire_attribute_value(value)
            if wire is not None:
                serialized[serializer.get_serialized_name(shape, key)] = wire
                return
        original(serializer, serialized, value, shape, key)

    patcher.setattr(JSONSerializer, "_serialize_type_structure", serialize_structure)


class Patches:
    """A ``Patcher`` outside pytest: remembers what it replaced and puts it back on ``undo`` (last first).

    ``undo`` puts back only what is still its own patch: one patched again since (a test's monkeypatch while
    the local stack runs) stays, and whoever patched it puts this patch back when they undo theirs.
    """

    _ABSENT = object()

    def __init__(self) -> None:
        self._replaced: list[tuple[Any, str, Any, Any]] = []  # (target, name, what it replaced, what it set)

    def setattr(self, target: Any, name: str, value: Any) -> None:
        self._replaced.append((target, name, vars(target).get(name, self._ABSENT), value))
        setattr(target, name, value)

    def undo(self) -> None:
        while self._replaced:
            target, name, replaced, installed = self._replaced.pop()
            if vars(target).get(name, self._ABSENT) is not installed:
                continue
            if replaced is self._ABSENT:
                delattr(target, name)
            else:
                setattr(target, name, replaced)


@contextlib.contextmanager
def wire_attribute_values_installed() -> Iterator[None]:
    """``wire_attribute_values`` for the length of the block (the local stack holds it while it runs).

    On another moto version it logs one warning and patches nothing: the local stack answers the same, only
    slower (the handler tier calls ``wire_attribute_values`` itself, which refuses). After the block the patch
    is spent: if a later patcher puts it back (``Patches.undo``), it leaves every value to moto's serialiser.
    """
    patches, holding = Patches(), threading.Event()
    holding.set()
    try:
        wire_attribute_values(patches, enabled=holding.is_set)
    except MotoVersionMismatch:
        log.warning(
            "moto %s is installed, not %s (requirements-dev.txt): the local stack runs without its moto speed "
            "patch (local/moto_patches.py), the same answers, only slower",
            moto.__version__,
            PATCHED_MOTO_VERSION,
        )
    try:
        yield
    finally:
        holding.clear()
        patches.undo()


def lean_moto(patcher: Patcher) -> None:
    """Make moto's DynamoDB cheaper without changing what it answers (single-threaded use only).

    Transactions back up only the partitions they touch (``TouchedPartitionsBackup``) and new items are
    measured once against the 400 KB limit (``_item_init``). ``patcher`` undoes both (``monkeypatch``).
    Raises ``MotoVersionMismatch`` before patching anything when moto is not ``PATCHED_MOTO_VERSION``.
    """
    check_moto_version()
    TouchedPartitionsBackup().install(patcher)
    patcher.setattr(Item, "__init__", _item_init)
