"""Fault injection for every AWS call the service makes (issue 6, item 4).

``FaultInjector`` wraps ``botocore.client.BaseClient._make_api_call``, the one door every boto3 client
goes through (the service's, and the one Powertools idempotency borrows), above moto and above botocore's
own retries: an injected fault is the answer the service sees once the SDK has given up. It

1. records the calls an operation makes on a clean run (``Call``: service, operation, table, whether it
   writes and whether it carries a condition), and the emails that reached SES;
2. on a later run from the same initial state, fails call ``i`` with one ``Kind``:

   - ``throttling``: ``ProvisionedThroughputExceededException`` (DynamoDB item calls),
     ``TransactionCanceledException`` with a ``ThrottlingError`` reason (transactions),
     ``TooManyRequestsException`` (SES), ``ThrottlingException`` (anything else); nothing is applied;
   - ``timeout``: ``ConnectTimeoutError``, the request never reached the service;
   - ``internal_error``: a 500 ``InternalServerError`` (``InternalFailure`` outside DynamoDB), not applied;
   - ``conflict`` (writes with a condition): a concurrent writer really changes the item first, so the
     condition genuinely fails: the version of the first conditioned item that has one is bumped (a claim or a
     limit counter), a counter that does not exist yet is created empty (another partner's add, since
     cancelled), an idempotency record is written in progress (the same request, still running); only when no
     item can be changed honestly is a ``TransactionCanceledException`` (``ConditionalCheckFailed``) made up;
   - ``lost_response`` (writes): the call is applied, then ``ReadTimeoutError``: it went through, the answer
     was lost. The hard case for exactly-once;
   - ``resent_after_loss`` (writes): the call is applied, its answer lost, and the SDK sends the same request
     again (botocore's standard retry mode retries read timeouts): the service gets the second answer,
     typically a conditional failure tripped by its own first attempt, or a second email;

   and the permanent kinds (issue 17, item 2; ``Call.permanent_kinds``), which no retry cures, nothing applied:

   - ``validation_error``: ``ValidationException`` (``BadRequestException`` from SES, a bad address);
   - ``message_rejected`` (SES sends): ``MessageRejected``, SES refuses the message for good;
   - ``access_denied``: ``AccessDeniedException`` (a policy or key an operator must fix);
   - ``resource_not_found``: ``ResourceNotFoundException`` (``NotFoundException`` from SES: a missing table,
     bus, identity or configuration set).

Calls outside ``recording()`` (fixtures, assertions) pass straight through, unrecorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem", "SendEmail", "PutEvents"}
)
LINK = re.compile(r"/consent/([A-Za-z0-9_-]+)")


class Kind(StrEnum):
    THROTTLING = "throttling"
    TIMEOUT = "timeout"
    INTERNAL_ERROR = "internal_error"
    CONFLICT = "conflict"
    LOST_RESPONSE = "lost_response"
    RESENT_AFTER_LOSS = "resent_after_loss"
    VALIDATION_ERROR = "validation_error"
    MESSAGE_REJECTED = "message_rejected"
    ACCESS_DENIED = "access_denied"
    RESOURCE_NOT_FOUND = "resource_not_found"


EVERY_CALL = (Kind.THROTTLING, Kind.TIMEOUT, Kind.INTERNAL_ERROR)
PERMANENT = (Kind.VALIDATION_ERROR, Kind.ACCESS_DENIED, Kind.RESOURCE_NOT_FOUND)
# (code, HTTP status) of each permanent kind, per service; any service not named answers as DynamoDB does.
PERMANENT_ERRORS: dict[Kind, dict[str, tuple[str, int]]] = {
    Kind.VALIDATION_ERROR: {"dynamodb": ("ValidationException", 400), "sesv2": ("BadRequestException", 400)},
    Kind.MESSAGE_REJECTED: {"sesv2": ("MessageRejected", 400)},
    Kind.ACCESS_DENIED: {"dynamodb": ("AccessDeniedException", 400), "sesv2": ("AccessDeniedException", 403)},
    Kind.RESOURCE_NOT_FOUND: {"dynamodb": ("ResourceNotFoundException", 400), "sesv2": ("NotFoundException", 404)},
}


@dataclass(frozen=True)
class Call:
    """One AWS call as the service made it."""

    index: int
    service: str
    operation: str
    table: str | None
    conditional: bool

    @property
    def writes(self) -> bool:
        return self.operation in WRITES

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The faults that make sense for this call."""
        kinds = list(EVERY_CALL)
        if self.conditional:
            kinds.append(Kind.CONFLICT)
        if self.writes:
            kinds += [Kind.LOST_RESPONSE, Kind.RESENT_AFTER_LOSS]
        return tuple(kinds)

    @property
    def permanent_kinds(self) -> tuple[Kind, ...]:
        """The failures no retry cures that this call can meet."""
        return (*PERMANENT, Kind.MESSAGE_REJECTED) if self.operation == "SendEmail" else PERMANENT

    @property
    def label(self) -> str:
        where = f"[{self.table}]" if self.table else ""
        return f"#{self.index} {self.service}.{self.operation}{where}"


@dataclass(frozen=True)
class Fault:
    index: int
    kind: Kind

    def __str__(self) -> str:
        return f"{self.kind.value}@{self.index}"


@dataclass(frozen=True)
class SentEmail:
    """An email SES accepted: who it went to, what kind (the service tags each), and the consent link if any."""

    to: str
    kind: str
    claim_id: str
    token: str | None


@dataclass
class FaultInjector:
    """Records AWS calls and fails the one a ``Fault`` names; see the module docstring."""

    calls: list[Call] = field(default_factory=list)
    emails: list[SentEmail] = field(default_factory=list)
    lost_emails: list[SentEmail] = field(default_factory=list)  # SES took them, the service never heard back
    # Emails whose SendEmail failed with a 5xx: not sent here, but SES may have sent them (failed mid-way).
    unknown_emails: list[SentEmail] = field(default_factory=list)
    fault: Fault | None = None
    injected: list[tuple[Fault, Call, str]] = field(default_factory=list)
    after_write: Callable[[Call], None] | None = None
    _active: bool = False
    _original: Callable[..., Any] | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = BaseClient._make_api_call
        self._original = original
        injector = self

        def make_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            return injector._intercept(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)

    @contextmanager
    def recording(self, fault: Fault | None = None) -> Iterator[FaultInjector]:
        """Record every call made inside; fail the one ``fault`` names."""
        self.calls, self.emails, self.lost_emails, self.unknown_emails, self.fault = [], [], [], [], fault
        self._active = True
        try:
            yield self
        finally:
            self._active = False
            self.fault = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Calls made inside pass through unrecorded (the fault's own concurrent writer, assertions)."""
        active, self._active = self._active, False
        try:
            yield
        finally:
            self._active = active

    # --- the door -----------------------------------------------------------------------------------

    def _intercept(self, client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        assert self._original is not None
        if not self._active:
            return self._original(client, operation, params)
        call = Call(
            index=len(self.calls),
            service=client.meta.service_model.service_name,
            operation=operation,
            table=_table_of(params),
            conditional=_conditional(operation, params),
        )
        self.calls.append(call)
        fault = self.fault
        if fault is None or fault.index != call.index:
            response = self._original(client, operation, params)
            self._applied(call, params)
            return response
        assert fault.kind in call.kinds + call.permanent_kinds, f"{fault} does not apply to {call.label}"
        if fault.kind is Kind.LOST_RESPONSE:
            self._original(client, operation, params)
            self._applied(call, params)
            if operation == "SendEmail":
                self.lost_emails.append(self.emails[-1])
            self.injected.append((fault, call, "applied, then ReadTimeoutError"))
            raise ReadTimeoutError(endpoint_url=client.meta.endpoint_url)
        if fault.kind is Kind.RESENT_AFTER_LOSS:
            self._original(client, operation, params)
            self._applied(call, params)
            if operation == "SendEmail":
                self.lost_emails.append(self.emails[-1])
            self.injected.append((fault, call, "applied, answer lost, sent again by the SDK"))
            response = self._original(client, operation, params)  # may trip on the first attempt's own write
            self._applied(call, params)
            return response
        if fault.kind is Kind.TIMEOUT:
            self.injected.append((fault, call, "ConnectTimeoutError"))
            raise ConnectTimeoutError(endpoint_url=client.meta.endpoint_url)
        if fault.kind is Kind.CONFLICT:
            with self.paused():
                how = self._concurrent_write(client, operation, params)
            self.injected.append((fault, call, how))
            if how.startswith("made up"):
                code = (
                    "TransactionCanceledException"
                    if operation == "TransactWriteItems"
                    else "ConditionalCheckFailedException"
                )
                raise _client_error(client, operation, code, 400, params, reason="ConditionalCheckFailed")
            response = self._original(client, operation, params)  # the condition now genuinely fails
            self._applied(call, params)
            return response
        code, status = _error_for(call, fault.kind)
        self.injected.append((fault, call, code))
        if operation == "SendEmail" and status >= 500:
            self.unknown_emails.append(_sent_email(params))
        raise _client_error(client, operation, code, status, params, reason="ThrottlingError")

    def _applied(self, call: Call, params: dict[str, Any]) -> None:
        if call.operation == "SendEmail":
            self.emails.append(_sent_email(params))
        if call.writes and self.after_write is not None:
            with self.paused():
                self.after_write(call)

    # --- a real concurrent writer -------------------------------------------------------------------

    def _concurrent_write(self, client: Any, operation: str, params: dict[str, Any]) -> str:
        """Change, through the same client, the item whose condition the call depends on."""
        for table, key, condition, item in _conditioned_items(operation, params):
            if "version = :read" in condition:
                stored = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
                if stored is not None and "version" in stored:
                    client.update_item(
                        TableName=table,
                        Key=key,
                        UpdateExpression="ADD version :one",
                        ExpressionAttributeValues={":one": {"N": "1"}},
                    )
                    return f"bumped the version of {key['PK']['S'].split('#')[0]}#…"
            if condition.startswith("attribute_not_exists(PK)") and key.get("SK", {}).get("S") == "COUNT":
                client.put_item(
                    TableName=table,
                    Item={**key, "active_count": {"N": "0"}, "version": {"N": "1"}},
                    ConditionExpression="attribute_not_exists(PK)",
                )
                return "created the counter (another partner's add, since ended)"
            if item is not None and "attribute_not_exists" in condition and "status" in item:
                client.put_item(TableName=table, Item=item)  # the same request, in progress elsewhere
                return "wrote the same idempotency record (the same request, in flight)"
        return "made up a ConditionalCheckFailed (no item could be changed honestly)"


# --- helpers -------------------------------------------------------------------------------------------


def _table_of(params: dict[str, Any]) -> str | None:
    if "TableName" in params:
        return str(params["TableName"])
    tables = {
        op.get("TableName")
        for entry in params.get("TransactItems", [])
        for op in entry.values()
        if isinstance(op, dict)
    }
    tables |= set(params.get("RequestItems", {}))
    return ",".join(sorted(t for t in tables if t)) or None


def _conditional(operation: str, params: dict[str, Any]) -> bool:
    return any(True for _ in _conditioned_items(operation, params))


def _conditioned_items(
    operation: str, params: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any], str, dict[str, Any] | None]]:
    """(table, key, condition, item put) of each item the call writes on a condition, in order."""
    if operation == "TransactWriteItems":
        entries = [op for entry in params["TransactItems"] for op in entry.values()]
    elif operation in {"PutItem", "UpdateItem", "DeleteItem"}:
        entries = [params]
    else:
        return
    for op in entries:
        condition = op.get("ConditionExpression")
        if not condition:
            continue
        item = op.get("Item")
        key = op.get("Key") or {name: item[name] for name in ("PK", "SK", "id") if item and name in item}
        yield op["TableName"], key, condition, item


def _error_for(call: Call, kind: Kind) -> tuple[str, int]:
    if kind in PERMANENT_ERRORS:
        errors = PERMANENT_ERRORS[kind]
        return errors.get(call.service, errors.get("dynamodb", ("ValidationException", 400)))
    if kind is Kind.INTERNAL_ERROR:
        return ("InternalServerError" if call.service == "dynamodb" else "InternalFailure"), 500
    if call.service == "dynamodb":
        if call.operation == "TransactWriteItems":
            return "TransactionCanceledException", 400
        return "ProvisionedThroughputExceededException", 400
    if call.service == "sesv2":
        return "TooManyRequestsException", 429
    return "ThrottlingException", 400


def _client_error(
    client: Any, operation: str, code: str, status: int, params: dict[str, Any], reason: str
) -> ClientError:
    """The error botocore would raise, with a transaction's cancellation reasons (``reason`` on the first item)."""
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    if code == "TransactionCanceledException":
        items = params.get("TransactItems", [])
        response["CancellationReasons"] = [{"Code": reason}] + [{"Code": "None"}] * (len(items) - 1)
    error_class = client.exceptions.from_code(code)
    error: ClientError = error_class(response, operation)
    return error


def _sent_email(params: dict[str, Any]) -> SentEmail:
    tags = {t["Name"]: t["Value"] for t in params.get("EmailTags", [])}
    text = params["Content"]["Simple"]["Body"]["Text"]["Data"]
    tokens = set(LINK.findall(text))
    return SentEmail(
        to=params["Destination"]["ToAddresses"][0],
        kind=tags.get("kind", "?"),
        claim_id=tags.get("claim_id", "?"),
        token=tokens.pop() if len(tokens) == 1 else None,
    )


def describe(params: dict[str, Any]) -> str:
    """A call's parameters, short (for failure messages)."""
    return json.dumps(params, default=str)[:300]


@dataclass
class Outage:
    """Every call to one of ``services`` (boto3 service names) fails with ``kind`` while inside ``during()``: a
    dependency throttling (or failing) for longer than any retry, as the service sees it once the SDK gave up.
    ``writes_only``: only its writes fail; ``after``: only once a call of that operation (of any service) went
    through inside, e.g. the writes that record an email SES has taken."""

    services: frozenset[str]
    kind: Kind = Kind.THROTTLING
    writes_only: bool = False
    after: str | None = None
    failed: list[Call] = field(default_factory=list)
    _on: bool = False
    _armed: bool = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = BaseClient._make_api_call
        outage = self

        def make_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            call = Call(len(outage.failed), service, operation, _table_of(params), _conditional(operation, params))
            if not outage._fails(call):
                response = original(client, operation, params)
                outage._armed = outage._armed or (outage._on and operation == outage.after)
                return response
            outage.failed.append(call)
            code, status = _error_for(call, outage.kind)
            raise _client_error(client, operation, code, status, params, reason="ThrottlingError")

        monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)

    def _fails(self, call: Call) -> bool:
        armed = self.after is None or self._armed
        return self._on and armed and call.service in self.services and (call.writes or not self.writes_only)

    @contextmanager
    def during(self) -> Iterator[Outage]:
        self._on, self._armed = True, False
        try:
            yield self
        finally:
            self._on = False
