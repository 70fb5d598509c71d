"""One call of each AWS operation a function makes, answered in the process (SnapStart priming, issue 16 item 3).

botocore builds an operation's model, its input shapes, the serializer's and parser's work on them, the
endpoint and the signature at the operation's first call: the first request after a restore would pay it.
``prime_operations`` makes one call of each operation with parameters built from its input shape (every
member but the endpoint's, one of each kind of a union in a list or map); a ``before-send`` handler,
registered on that client's events for the priming only, answers each call with an empty 200, so
validation, serialization, endpoint resolution, signing and parsing all run and no request leaves the
process. The handler is unregistered afterwards, whatever happened.

Signing reads the client's credentials: at a SnapStart init Lambda provides the function role's through the
container credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI``), not the access key variables, and
botocore's default chain refreshes them before they expire, so the snapshot pins no key (docs/deployment.md,
"Credentials"); locally they are the fake ones of ``local.aws_env``. Nothing is sent with them.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from botocore import xform_name
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.compat import HTTPHeaders
from botocore.model import ListShape, MapShape, OperationModel, Shape, StringShape, StructureShape

# Where a primed request points once answered: a host that cannot exist, so that no later ``before-send``
# handler (moto's, in the tests) takes it for a call to AWS.
PRIMED_URL = "https://snapstart-prime.invalid/"
_HANDLER_ID = "mci-snapstart-prime"
# botocore resolves, and caches, a call's endpoint per list of the tables it names: a transaction names its table
# once per item, so one is primed for each number of items a transaction takes (DynamoDB: 1 to 100). That cache
# holds 100 endpoints for the whole process, least recently used out first: the sizes are primed largest first, and
# every operation's own call is made again after them, so what overflows is the largest transactions' endpoints.
PER_ITEM_COUNT = {"TransactWriteItems": 100}
_WHEN = datetime(2026, 1, 1, tzinfo=UTC)
# A recursive shape (a DynamoDB value within a value) is given every kind this many levels deep, then the least it can
# be: botocore builds a nested value's shapes once per level of nesting, per operation, and our items nest lists and
# maps two deep (a list of maps, a map of lists); one level more for margin.
NESTING = 3


class _Body(io.BytesIO):
    """The raw body of a canned answer, as botocore reads an HTTP response's (``stream``)."""

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.getvalue()


def prime_operations(client: BaseClient, operations: Iterable[str], text: str = "x") -> list[str]:
    """Call each operation (``GetItem``) once on ``client``, answered here; the operations answered, in order.

    Every string parameter is ``text``: the function's table name, since botocore resolves (and caches) the
    endpoint for the tables a call names."""
    names = list(operations)
    calls = [(getattr(client, xform_name(name)), name) for name in names]
    examples = [example_parameters(client.meta.service_model.operation_model(name), text) for name in names]
    with answered_here(client) as answered:
        for (call, operation), parameters in zip(calls, examples, strict=True):
            call(**parameters)
            for count in range(PER_ITEM_COUNT.get(operation, 0), 0, -1):
                call(TransactItems=[{"Put": {"TableName": text, "Item": {}}}] * count)
        if PER_ITEM_COUNT.keys() & set(names):  # again, last: their endpoints the most recently used
            for (call, _), parameters in zip(calls, examples, strict=True):
                call(**parameters)
    return answered


class PrimingTable:
    """A synthetic world's DynamoDB items, kept in this process for priming's requests (``answered_here``): what a
    call writes whole (a put, a transaction's puts, a batch) is kept, a delete removes, an update or a condition
    check is answered as if it held; a read finds what was written (a query: by its key condition's partition key
    and ``begins_with``, the rest of the expression ignored). Never a table's semantics: enough for one valid
    request of each route to run its real path, and nothing ever leaves the process."""

    _KEY = re.compile(r"^\s*(#?\w+)\s*=\s*(:\w+)")
    _BEGINS = re.compile(r"begins_with\s*\(\s*(#?\w+)\s*,\s*(:\w+)\s*\)")

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.sent: list[str] = []  # the text of each email an SES v2 client was answered for

    def answer(self, operation: str, call: dict[str, Any]) -> dict[str, Any]:
        if operation == "SendEmail":
            self.sent.append(str(call["Content"]["Simple"]["Body"]["Text"]["Data"]))
            return {"MessageId": "snapstart-prime"}
        if operation == "GetItem":
            item = self.items.get(_key(call["Key"]))
            return {"Item": item} if item else {}
        if operation == "BatchGetItem":
            responses = {
                table: [self.items[_key(k)] for k in asked["Keys"] if _key(k) in self.items]
                for table, asked in call["RequestItems"].items()
            }
            return {"Responses": responses, "UnprocessedKeys": {}}
        if operation == "Query":
            found = self._query(call)
            return {"Items": found, "Count": len(found), "ScannedCount": len(found)}
        writes = {
            "PutItem": [{"Put": call}],
            "DeleteItem": [{"Delete": call}],
            "TransactWriteItems": call.get("TransactItems", []),
            "BatchWriteItem": [
                {"Put": r["PutRequest"]} if "PutRequest" in r else {"Delete": r["DeleteRequest"]}
                for requests in call.get("RequestItems", {}).values()
                for r in requests
            ],
        }.get(operation, [])
        for write in writes:
            if "Put" in write:
                self.items[_key(write["Put"]["Item"])] = write["Put"]["Item"]
            elif "Delete" in write:
                self.items.pop(_key(write["Delete"]["Key"]), None)
        return {"UnprocessedItems": {}} if operation == "BatchWriteItem" else {}

    def _query(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        condition = call.get("KeyConditionExpression", "")
        names, values = call.get("ExpressionAttributeNames", {}), call.get("ExpressionAttributeValues", {})
        found = list(self.items.values())
        for pattern, keep in ((self._KEY, _equal), (self._BEGINS, _begins)):
            match = pattern.search(condition)
            if match:
                attribute, value = names.get(match[1], match[1]), values.get(match[2])
                found = [item for item in found if keep(item.get(attribute), value)]
        return found


def _key(item: dict[str, Any]) -> tuple[str, str]:
    """An item's key in the table: PK and SK (the idempotency table's items, keyed by id, share no key with ours)."""
    return (json.dumps(item.get("PK", item.get("id"))), json.dumps(item.get("SK")))


def _equal(found: Any, wanted: Any) -> bool:
    return found is not None and found == wanted


def _begins(found: Any, wanted: Any) -> bool:
    return isinstance(found, dict) and isinstance(wanted, dict) and str(found.get("S", "")).startswith(wanted["S"])


@contextmanager
def answered_here(client: BaseClient, table: PrimingTable | None = None) -> Iterator[list[str]]:
    """While inside, every call on ``client`` is answered with a 200 in this process, whose body holds every
    member of the operation's output (so that parsing it builds what a real answer needs), or with ``table``'s
    items for a DynamoDB client given one; the operations it answered, in order."""
    answered: list[str] = []
    service = client.meta.service_model

    def answer(request: AWSPreparedRequest, event_name: str, **_: object) -> AWSResponse:
        operation = event_name.rsplit(".", 1)[-1]
        answered.append(operation)
        request.url = PRIMED_URL
        if table is not None and (service.service_name == "dynamodb" or operation == "SendEmail"):
            sent = request.body if isinstance(request.body, str | bytes) else b"{}"
            body = json.dumps(table.answer(operation, json.loads(sent or b"{}"))).encode()
        else:
            body = example_answer(service.operation_model(operation))
        return AWSResponse(PRIMED_URL, 200, HTTPHeaders(), _Body(body))

    event = f"before-send.{client.meta.service_model.service_id.hyphenize()}"
    earlier = dict(_lookups(client) or {})  # an earlier priming's, which registering empties
    # botocore types handlers as returning None; a before-send handler's first answer is the response used.
    client.meta.events.register_first(event, answer, unique_id=_HANDLER_ID)  # type: ignore[arg-type]
    try:
        yield answered
    finally:
        looked_up = {**earlier, **(_lookups(client) or {})}
        client.meta.events.unregister(event, unique_id=_HANDLER_ID)
        _put_back(client, looked_up, answer)


def _lookups(client: BaseClient) -> dict[str, Any] | None:
    """botocore's cache of the handlers of each event name it emitted (its emitter's, under the aliaser)."""
    emitter = getattr(client.meta.events, "_emitter", client.meta.events)
    cache = getattr(emitter, "_lookup_cache", None)
    return cache if isinstance(cache, dict) else None


def _put_back(client: BaseClient, looked_up: dict[str, Any], handler: object) -> None:
    """botocore empties that cache whenever a handler is registered or unregistered, so the first request would
    look up the handlers of each of its events again: put back what the priming looked up, without its own
    handler. Only when the cache is what it was when written (a botocore internal): otherwise leave it empty."""
    cache = _lookups(client)
    if cache is None or cache:
        return
    for name, handlers in looked_up.items():
        cache[name] = deque(h for h in handlers if h is not handler)


def example_parameters(operation: OperationModel, text: str = "x") -> dict[str, Any]:
    """Valid parameters for ``operation`` that reach as much of its input shape as one call can: every member but
    the optional ones that choose the endpoint (a global or multi-region endpoint would need another signer)."""
    if operation.input_shape is None:
        return {}
    shape = operation.input_shape
    endpoint = {p.member_name for p in operation.context_parameters} - set(shape.required_members)
    return {name: _example(member, (), text) for name, member in shape.members.items() if name not in endpoint}


def example_answer(operation: OperationModel) -> bytes:
    """The body of a JSON answer to ``operation`` with every member of its output (``{}`` for other protocols)."""
    if operation.output_shape is None or operation.metadata["protocol"] not in ("json", "rest-json"):
        return b"{}"
    return json.dumps(_example(operation.output_shape, (), "x"), default=_wire).encode()


def _wire(value: object) -> object:
    """A blob or a timestamp as JSON protocols carry them."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(value)


def _example(shape: Shape, path: tuple[str, ...], text: str) -> Any:
    if isinstance(shape, StructureShape):
        return _structure(shape, path, text)
    if isinstance(shape, ListShape):
        found = _values(shape.member, path, text)
        return found * max(1, -(-int(shape.metadata.get("min", 1)) // len(found)))
    if isinstance(shape, MapShape):
        values = _values(shape.value, path, text)
        return {text if i == 0 else f"{text}{i}": value for i, value in enumerate(values)}
    return _scalar(shape, text)


def _structure(shape: StructureShape, path: tuple[str, ...], text: str) -> dict[str, Any]:
    if path.count(shape.name) >= NESTING:  # a recursive shape (a DynamoDB value within a value): the least it can be
        if shape.is_tagged_union:
            name, member = next((n, m) for n, m in shape.members.items() if not isinstance(m, StructureShape))
            return {name: _leaf(member, text)}
        return {name: _example(shape.members[name], path, text) for name in shape.required_members}
    inner = (*path, shape.name)
    if shape.is_tagged_union:
        name, member = next(iter(shape.members.items()))
        return {name: _example(member, inner, text)}
    return {name: _example(member, inner, text) for name, member in shape.members.items()}


def _values(shape: Shape, path: tuple[str, ...], text: str) -> list[Any]:
    """Values a list or map of ``shape`` holds: one per member of a union (each kind of DynamoDB value)."""
    if isinstance(shape, StructureShape) and shape.is_tagged_union and path.count(shape.name) < NESTING:
        inner = (*path, shape.name)
        return [{name: _example(member, inner, text)} for name, member in shape.members.items()]
    return [_example(shape, path, text)]


def _leaf(shape: Shape, text: str) -> Any:
    return [] if isinstance(shape, ListShape) else {} if isinstance(shape, MapShape) else _scalar(shape, text)


def _scalar(shape: Shape, text: str) -> Any:
    minimum = int(shape.metadata.get("min", 1))
    kind = shape.type_name
    if isinstance(shape, StringShape):
        return shape.enum[0] if shape.enum else text.ljust(minimum, "x")
    if kind in ("integer", "long"):
        return max(1, minimum)
    if kind in ("float", "double"):
        return 1.0
    if kind == "boolean":
        return False
    if kind == "blob":
        return b"x" * max(1, minimum)
    if kind == "timestamp":
        return _WHEN
    return None
