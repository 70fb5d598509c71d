"""The handlers in process on moto, with every AWS call counted and recorded.

- ``RoundTripCounter`` counts the calls of the clients the wiring creates (``mci.adapters.aws``) with
  botocore's ``before-call`` event, while a measured invocation runs.
- ``CallRecorder`` records every call any boto3 client of the process makes, in order, tagged with what
  was running (setup or a measured invocation), and ``Replayer`` makes the same calls bare in another
  region of moto (a fresh backend holding the same state): the bare cost of each invocation's calls.
- ``World`` is moto with the template's tables, the SES sender, the event bus and reference data, the
  template's environment, a settable service clock, and helpers to call the real handlers.
"""

from __future__ import annotations

import importlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from bench.common import FAKE_AWS, REGION, lambda_environment, template_functions
from local.answers import Answer
from local.lambda_runtime import FakeLambdaContext

OPERATIONS_PARTNER = "mci-operations"  # mci.domain.principal.OPERATIONS_PARTNER_ID
REPLAY_REGION = "us-west-2"  # the bare replay's own moto backend


# ---------------------------------------------------------------- counting and recording


class RoundTripCounter:
    """Calls per (client, operation), seen through each wiring client's own ``before-call`` event."""

    def __init__(self, clients: list[tuple[str, Any]]) -> None:
        self.active = False
        self.counts: Counter[tuple[str, str]] = Counter()
        for label, client in clients:
            client.meta.events.register("before-call", partial(self._seen, label))

    def _seen(self, label: str, model: Any = None, **_: Any) -> None:
        if self.active:
            self.counts[(label, model.name)] += 1

    @contextmanager
    def counting(self) -> Iterator[Counter[tuple[str, str]]]:
        self.counts = Counter()
        self.active = True
        try:
            yield self.counts
        finally:
            self.active = False


@dataclass
class RecordedCall:
    service: str
    operation: str
    params: dict[str, Any]
    group: tuple[str, int, str] | None
    failed: bool = False


class CallRecorder:
    """Wraps ``BaseClient._make_api_call`` (the one path of every client method) to keep each call."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.group: tuple[str, int, str] | None = None
        self.paused = False
        self._original: Any = None

    def install(self) -> None:
        from botocore.client import BaseClient
        from botocore.exceptions import ClientError

        original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private, untyped in the stubs
        recorder = self

        def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            if recorder.paused:
                return original(client, operation_name, api_params)
            call = RecordedCall(client.meta.service_model.service_name, operation_name, api_params, recorder.group)
            recorder.calls.append(call)
            try:
                return original(client, operation_name, api_params)
            except ClientError:
                call.failed = True
                raise

        self._original = original
        setattr(BaseClient, "_make_api_call", _make_api_call)  # noqa: B010

    def uninstall(self) -> None:
        if self._original is not None:
            from botocore.client import BaseClient

            setattr(BaseClient, "_make_api_call", self._original)  # noqa: B010
            self._original = None

    @contextmanager
    def tagged(self, group: tuple[str, int, str]) -> Iterator[None]:
        previous, self.group = self.group, group
        try:
            yield
        finally:
            self.group = previous


class Replayer:
    """Makes the recorded calls again with bare boto3 clients, in another region of the same moto.

    A region of moto is a separate backend, so the replica holds exactly what the handlers' region held
    at the same point: every call is replayed in order, setup untimed, each measured invocation's calls
    timed. Replaying right after each invocation interleaves the handler's timing and the bare timing,
    so both see the same machine load.
    """

    def __init__(self, recorder: CallRecorder, region: str = REPLAY_REGION) -> None:
        self.recorder = recorder
        self.region = region
        self.position = 0
        self._clients: dict[str, Any] = {}

    def catch_up(self) -> dict[tuple[str, int], float]:
        from botocore import xform_name
        from botocore.exceptions import ClientError

        calls = self.recorder.calls[self.position :]
        self.position = len(self.recorder.calls)
        timed: dict[tuple[str, int], float] = {}
        self.recorder.paused = True
        try:
            for call in calls:
                method = getattr(self._client(call.service), xform_name(call.operation))
                started = time.perf_counter()
                try:
                    method(**call.params)
                except ClientError:
                    if not call.failed:
                        raise
                elapsed = time.perf_counter() - started
                if call.group is not None and call.group[2] == "measured":
                    key = (call.group[0], call.group[1])
                    timed[key] = timed.get(key, 0.0) + elapsed
        finally:
            self.recorder.paused = False
        return timed

    def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            import boto3

            client = boto3.session.Session().client(service, region_name=self.region)  # type: ignore[call-overload]
            self._clients[service] = client
        return client


# ---------------------------------------------------------------- the clock


class SettableClock:
    """The service clock of the benchmark: set, not advanced, so setups can backdate claims."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at


# ---------------------------------------------------------------- the world


@dataclass
class World:
    """moto in process with the template's resources, reference data and environment; one per run."""

    customers: int
    now: datetime
    clock: SettableClock = field(init=False)
    recorder: CallRecorder = field(default_factory=CallRecorder)
    counter: RoundTripCounter | None = None
    replayer: Replayer | None = None
    _next_customer: int = 0
    _stack: list[Callable[[], None]] = field(default_factory=list)
    _mock: Any = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> World:
        from moto import mock_aws

        from local.cloudformation import create_tables, load_template
        from mci import wiring
        from mci.adapters import aws
        from mci.domain.reference import ReferenceData

        template = load_template()
        self._use_environment(template)
        self._lean_transactions()
        self._mock = mock_aws()
        self._mock.start()
        self.recorder.install()
        wiring.reset()
        self.clock = SettableClock(self.now)
        wiring.use_clock(self.clock)
        with self.recorder.tagged(("world", 0, "setup")):
            import boto3

            create_tables(boto3.session.Session().client("dynamodb", region_name=REGION), template)
            ses = boto3.session.Session().client("ses", region_name=REGION)
            ses.verify_email_identity(EmailAddress=os.environ["SENDER_EMAIL"])
            if os.environ.get("SES_CONFIGURATION_SET"):
                ses.create_configuration_set(ConfigurationSet={"Name": os.environ["SES_CONFIGURATION_SET"]})
            boto3.session.Session().client("events", region_name=REGION).create_event_bus(
                Name=os.environ["EVENT_BUS_NAME"]
            )
            clients = [  # the sweep sends through its own SES client (one attempt per send): counted as SES too
                ("dynamodb", aws.dynamodb()),
                ("sesv2", aws.sesv2()),
                ("sesv2", aws.sesv2_one_attempt()),
                ("events", aws.events()),
            ]
            self.counter = RoundTripCounter(clients)
            wiring.services().reference.save(ReferenceData.model_validate(self.reference_data()))
        self.replayer = Replayer(self.recorder)
        self.replayer.catch_up()
        return self

    def stop(self) -> None:
        from mci import wiring
        from mci.domain.clock import SystemClock

        self.recorder.uninstall()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        while self._stack:
            self._stack.pop()()
        wiring.reset()
        wiring.use_clock(SystemClock())

    def _use_environment(self, template: dict[str, Any]) -> None:
        """Every function's template environment (they agree), fake AWS, never an endpoint override."""
        saved = dict(os.environ)

        def restore() -> None:
            os.environ.clear()
            os.environ.update(saved)

        self._stack.append(restore)
        for name in list(os.environ):
            if name.startswith(("AWS_", "POWERTOOLS_")):
                del os.environ[name]
        for function in template_functions(template):
            os.environ.update(lambda_environment(template, function))
        os.environ.update(FAKE_AWS)
        # Logs at WARNING, as in the tests: INFO lines would interleave with the benchmark's table.
        os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"

    def _lean_transactions(self) -> None:
        """moto deep-copies whole tables per transaction; back up only what a transaction touches."""
        import pytest

        from local.moto_patches import lean_moto

        patch = pytest.MonkeyPatch()
        lean_moto(patch)  # the moto tests' patches; refuses a moto version they were not written for
        self._stack.append(patch.undo)

    # --- reference data ------------------------------------------------------------------------

    def reference_data(self) -> dict[str, Any]:
        from tests.support.numbered_customers import numbered_customers
        from tests.support.reference import CONTOSO_MADRID, demo_json

        data = demo_json()
        extra = dict(next(e for e in data["engagements"] if e["engagement_id"] == SECURITY))
        extra.update(engagement_id=THIRD, name="Cloud readiness review", max_active_claims_per_customer=1)
        data["engagements"].append(extra)
        for location in data["locations"]:
            if location["location_id"] == CONTOSO_MADRID:
                location["eligible_engagements"].append(THIRD)
        numbered = numbered_customers(range(1, self.customers + 1))
        enterprise = numbered_customers(ENTERPRISE_CUSTOMERS, segment="ENT")
        data["customers"] += numbered["customers"] + enterprise["customers"]
        data["domains"] += numbered["domains"] + enterprise["domains"]
        return data

    def next_customer(self) -> int:
        self._next_customer += 1
        if self._next_customer > self.customers:
            raise RuntimeError(f"the world has only {self.customers} numbered customers")
        return self._next_customer

    # --- calling handlers ----------------------------------------------------------------------

    def event(
        self,
        method: str,
        path: str,
        *,
        claims: dict[str, str] | None,
        body: Any = None,
        raw_body: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The event API Gateway sends for ``method path``: route key and path parameters from the template."""
        from local.events import http_event
        from local.handler_calls import template_route

        route, path_parameters = template_route(method, path)
        return http_event(
            method,
            path,
            route_key=route.route_key,
            body=body,
            raw_body=raw_body,
            claims=claims,
            headers=headers,
            path_parameters=path_parameters or None,
            query=query,
        )

    def timed_invoke(self, function: str, event: dict[str, Any]) -> tuple[Answer, float]:
        handler = importlib.import_module(f"functions.{function}.app").lambda_handler
        context = bench_context(function)
        started = time.perf_counter()
        raw = handler(event, context)
        elapsed = time.perf_counter() - started
        return Answer.of_result(raw), elapsed

    def call(self, event: dict[str, Any], expect: int = 200) -> Answer:
        """A setup request (an HTTP API event), served by the function the template routes it to."""
        from local.handler_calls import route_handler, template_route

        route, _ = template_route(event["requestContext"]["http"]["method"], event["rawPath"])
        answer = Answer.of_result(route_handler(route.route)(event, bench_context()))
        if answer.status != expect:
            raise RuntimeError(f"setup: {route.route_key} answered {answer.status}: {answer.body}")
        return answer


def bench_context(folder: str | None = None) -> FakeLambdaContext:
    """The Lambda context a bench invocation gets: with the timeout the template gives the function in
    ``functions/<folder>/`` (the sweep stops sending when its invocation is nearly out of time), else
    the template's default."""
    from functions.table import FUNCTIONS

    written = {f.folder: f.properties.get("Timeout", DEFAULT_TIMEOUT) for f in FUNCTIONS}
    timeouts = {folder: int(getattr(value, "value", value)) for folder, value in written.items()}  # a Why or not
    timeout = timeouts.get(folder or "", DEFAULT_TIMEOUT)
    return FakeLambdaContext("bench", timeout_seconds=timeout, aws_request_id="bench-request", log_stream_name="bench")


DEFAULT_TIMEOUT = 10  # template.yaml's Globals


SECURITY = "e-security-workshop"
THIRD = "e-bench-cloud-review"
ENTERPRISE_CUSTOMERS = range(900_001, 900_004)


MOTO_WARM_UP_TABLE = "MotoWarmUp"


def warm_moto(region: str = REGION) -> None:
    """moto's own first-call work, done once with a client and a table of its own: its DynamoDB expression parsers
    (their regexes compiled at first use), its first transaction, item update and conditional write, its serializer's
    first walk of each output shape. On AWS that is DynamoDB's time, not the function's: a sample that measures a
    function's first request does this in its setup, as it compiles moto's SES v2 routes there."""
    import boto3

    from local.cloudformation import load_template, table_definitions

    client = boto3.session.Session().client("dynamodb", region_name=region)
    client.create_table(**table_definitions(load_template(), {"ClaimsTable": MOTO_WARM_UP_TABLE})["ClaimsTable"])
    table = MOTO_WARM_UP_TABLE
    new_item = "attribute_not_exists(PK)"

    def key(sk: str) -> dict[str, Any]:
        return {"PK": {"S": "warm"}, "SK": {"S": sk}}

    item = {**key("a"), "GSI1PK": {"S": "g"}, "GSI1SK": {"S": "a"}, "n": {"N": "1"}, "ids": {"SS": ["w"]}}
    client.put_item(TableName=table, Item=item, ConditionExpression=new_item)
    client.get_item(TableName=table, Key=key("a"))
    client.batch_get_item(RequestItems={table: {"Keys": [key("a"), key("b")]}})
    client.query(
        TableName=table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)",
        ExpressionAttributeValues={":pk": {"S": "warm"}, ":sk": {"S": "a"}},
    )
    client.query(
        TableName=table,
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :pk AND GSI1SK <= :sk",
        ExpressionAttributeValues={":pk": {"S": "g"}, ":sk": {"S": "z"}},
    )
    client.update_item(
        TableName=table,
        Key=key("a"),
        UpdateExpression="SET #s = :s, updated = :s ADD n :one, ids :ids REMOVE gone",
        ConditionExpression="attribute_exists(PK) AND (n < :big OR #s = :s) AND NOT contains(ids, :s)",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "x"}, ":one": {"N": "1"}, ":big": {"N": "9"}, ":ids": {"SS": ["y"]}},
        ReturnValues="ALL_NEW",
    )
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": key("b"), "ConditionExpression": new_item}},
            {
                "Update": {
                    "TableName": table,
                    "Key": key("a"),
                    "UpdateExpression": "SET #s = :s ADD n :one",
                    "ConditionExpression": "n = :n",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":s": {"S": "y"}, ":one": {"N": "1"}, ":n": {"N": "2"}},
                }
            },
            {"ConditionCheck": {"TableName": table, "Key": key("c"), "ConditionExpression": new_item}},
        ]
    )
    client.transact_write_items(TransactItems=[{"Delete": {"TableName": table, "Key": key("b")}}])
    client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": key("d")}}]})
    client.delete_item(TableName=table, Key=key("d"))
