"""DynamoDB's per-request atomicity for moto: while in use, moto answers DynamoDB requests one at a time.

DynamoDB applies each request atomically. moto does not (docs/testing.md, "Known limits of moto"): its
``TransactWriteItems`` checks and writes item by item without a lock, and on a cancelled transaction it
restores a copy of the tables taken when the transaction began, erasing what other threads committed
meanwhile (acknowledged writes lost, several winners of one claim slot, a cancel answered 200 on a claim
that ended accepted). So every DynamoDB and DynamoDB Streams request moto handles in this process takes
one process-wide lock. Threads still interleave between requests (read, decide, transact): that is the
concurrency the service's conditions and transactions are written for, and what the race tests exercise.

A cancelled transaction also leaves nothing in the table's stream, as on DynamoDB: moto's rollback swaps in
a copy of the table with a new stream shard, while shard iterators handed out before keep reading the old
one, which holds the records of the cancelled writes (a ``ClaimCreated`` for a claim that never existed)
and whose sequence numbers the next real writes reuse. Here the rollback keeps the one shard, cut back.

The local stack holds this for as long as it runs; the moto-server race test (``atomic_moto_requests``)
for its duration. Uses nest: the last one to leave puts moto back as it was.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

_HANDLERS: tuple[type[Any], ...] = (DynamoHandler, DynamoDBStreamsHandler)
_ONE_REQUEST_AT_A_TIME = threading.RLock()
_installing = threading.Lock()
_undo: list[Callable[[], None]] = []  # non-empty while installed
_users: list[object] = []  # one token per block in use


def _serialised(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def call_action(self: Any) -> Any:
        with _ONE_REQUEST_AT_A_TIME:
            return original(self)

    return call_action


def _without_stream_traces(original: Callable[..., Any]) -> Callable[..., Any]:
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        shards = {name: table.stream_shard for name, table in self.tables.items() if table.stream_shard}
        lengths = {name: len(shard.items) for name, shard in shards.items()}
        try:
            return original(self, transact_items)
        except Exception:
            for name, shard in shards.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not shard:  # rolled back to a copy
                    del shard.items[lengths[name] :]
                    shard.table = table
                    table.stream_shard = shard
            raise

    return transact_write_items


def _install(owner: type[Any], name: str, wrap: Callable[[Any], Any]) -> Callable[[], None]:
    """Wrap ``owner.name``; the function that undoes it."""
    own = owner.__dict__.get(name)  # None: inherited (the handlers' call_action, from BaseResponse)
    setattr(owner, name, wrap(getattr(owner, name)))

    def undo() -> None:
        if own is None:
            delattr(owner, name)
        else:
            setattr(owner, name, own)

    return undo


@contextlib.contextmanager
def atomic_dynamodb_requests() -> Iterator[None]:
    """Within the block, each DynamoDB request to moto (in process or server mode) runs alone."""
    token = object()
    with _installing:
        if not _users:
            _undo[:] = [_install(handler, "call_action", _serialised) for handler in _HANDLERS]
            _undo.append(_install(DynamoDBBackend, "transact_write_items", _without_stream_traces))
        _users.append(token)
    try:
        yield
    finally:
        with _installing:
            _users.remove(token)
            if not _users:
                for undo in reversed(_undo):
                    undo()
                _undo.clear()
