"""SnapStart's hooks (issue 16, item 3): every HTTP function primes before its snapshot, without an AWS call,
and renews what restored copies must not share. Lambda's ``snapshot_restore_py`` is absent here, as in the
local stack; a stand-in shows the hooks reach it when it is there."""

from __future__ import annotations

import gc
import importlib
import json
import logging
import random
import socket
import types
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from botocore.endpoint import Endpoint

from functions.table import FUNCTIONS
from mci import snapstart
from mci.adapters import aws
from mci.adapters.aws_priming import PRIMED_URL, PrimingTable
from mci.emails import render
from mci.http.resolver import new_resolver
from mci.observability import logger
from mci.snapstart_requests import PARTNER, REQUESTS, prime_end_to_end

HTTP_FUNCTIONS = [f for f in FUNCTIONS if f.routes]
# What a request that stops before any AWS call answers: no token, a body with an unknown field, a token that
# cannot be one (the consent page's neutral page).
ANSWERED_EARLY = {401, 404, 422}
# What a valid request of each route run end to end answers (mci.snapstart_requests).
SUCCESS = {"POST /customers": 201} | dict.fromkeys(
    (
        "POST /claims/{claim_id}/cancellation",
        "POST /claims/{claim_id}/submission",
        "POST /ops/claims/{claim_id}/review",
        "POST /claims/{claim_id}/consent-requests",
        "GET /consent/{token}",
        "HEAD /consent/{token}",
        "POST /consent/{token}",
        "POST /ops/reference-data",
        "GET /engagements",
        "GET /locations",
        "GET /known-customers",
        "GET /attention-items",
        "GET /claims/{claim_id}",
        "GET /engagements/{engagement_id}/customers",
        "POST /eligibility-checks",
    ),
    200,
)


def _priming_of(module: types.ModuleType) -> partial[Any]:
    (hook,) = [h for h in snapstart.BEFORE_SNAPSHOT if isinstance(h, partial) and h.args[0] is module.app]
    return hook


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """Priming freezes the collector's objects (a snapshot's); the rest of the test run should not inherit it."""
    yield
    gc.unfreeze()


@pytest.fixture
def no_aws_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing leaves the process: botocore's one door to the network, and any socket, refuse."""

    def refuse_request(endpoint: Endpoint, request: Any) -> Any:
        raise AssertionError(f"priming sent a request to AWS: {request.url}")

    def refuse_socket(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"priming opened a connection: {args}")

    monkeypatch.setattr(Endpoint, "_send", refuse_request)
    monkeypatch.setattr(socket.socket, "connect", refuse_socket)
    monkeypatch.setattr(socket, "create_connection", refuse_socket)


@pytest.mark.parametrize("function", HTTP_FUNCTIONS, ids=lambda f: f.name)
def test_every_http_function_primes_each_route_before_its_snapshot_without_calling_aws(
    function: Any, no_aws_call: None
) -> None:
    module = importlib.import_module(f"functions.{function.folder}.app")
    hook = _priming_of(module)

    answers = hook()

    assert set(answers) == {route.key for route in function.routes}
    assert set(answers.values()) <= ANSWERED_EARLY, answers
    for route in [*module.app._static_routes, *module.app._dynamic_routes]:
        assert route._dependant is not None, route.openapi_path  # its validation models are built
        assert route.request_param_name_checked, route.openapi_path  # its handler inspected, as at a first call
    assert render._template.cache_info().currsize == 2 * len(render.SUBJECTS)  # every email template read


@pytest.mark.parametrize("function", HTTP_FUNCTIONS, ids=lambda f: f.name)
def test_priming_calls_each_aws_operation_the_function_makes_once_answered_in_the_process(
    function: Any, no_aws_call: None
) -> None:
    """botocore builds an operation's model, serializer, endpoint, signature and parser at its first call: priming
    makes that call, and a before-send handler of its own answers it (a spy behind it sees every request
    already answered, pointed at a host that cannot exist); the refusing network proves nothing left."""
    module = importlib.import_module(f"functions.{function.folder}.app")
    hook = _priming_of(module)
    expected = snapstart.aws_calls(module.app, [factory() for factory in hook.args[1]])
    seen: list[tuple[str, str, str]] = []

    def spy(service: str, request: Any, event_name: str, **kwargs: Any) -> None:
        seen.append((service, event_name.rsplit(".", 1)[-1], request.url))

    for service, client in aws.CLIENTS.items():
        client().meta.events.register("before-send", partial(spy, service))

    hook()

    assert "dynamodb" in expected, expected
    assert {url for _, _, url in seen} == {PRIMED_URL}
    assert {(s, o) for s, o, _ in seen} >= {(s, o) for s, ops in expected.items() for o in ops}


def test_priming_creates_the_clients_the_function_uses(no_aws_call: None) -> None:
    module = importlib.import_module("functions.request_consent.app")
    aws.reset_clients()
    try:
        _priming_of(module)()
        assert aws.dynamodb.cache_info().currsize == 1
        assert aws.sesv2.cache_info().currsize == 1  # it sends: its first send no longer creates the client
    finally:
        aws.reset_clients()


def test_after_a_restore_random_is_reseeded_and_pooled_connections_are_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = aws.dynamodb()
    closed: list[bool] = []
    monkeypatch.setattr(client, "close", lambda: closed.append(True))
    random.seed(16)
    snapshot_draw = random.random()
    random.seed(16)  # the state every restored copy starts with

    snapstart.run_after_restore()

    assert random.random() != snapshot_draw
    assert closed == [True]
    assert [snapstart.renew] == snapstart.AFTER_RESTORE  # once, however many functions a process imports


def test_the_hooks_reach_lambdas_runtime_when_it_provides_them(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[tuple[str, Any]] = []
    runtime = types.ModuleType(snapstart.RUNTIME_HOOKS)
    runtime.register_before_snapshot = lambda hook: registered.append(("before", hook))  # type: ignore[attr-defined]
    runtime.register_after_restore = lambda hook: registered.append(("after", hook))  # type: ignore[attr-defined]
    monkeypatch.setitem(importlib.sys.modules, snapstart.RUNTIME_HOOKS, runtime)  # type: ignore[attr-defined]
    monkeypatch.setattr(snapstart, "BEFORE_SNAPSHOT", [])
    monkeypatch.setattr(snapstart, "AFTER_RESTORE", [])
    app = new_resolver()

    snapstart.on_snapshot(app)

    assert [kind for kind, _ in registered] == ["before", "after"]
    assert registered[0][1].args[0] is app
    assert registered[1][1] is snapstart.renew


def test_priming_leaves_the_snapshot_no_garbage_collection_to_do(no_aws_call: None) -> None:
    """Measured (docs/performance.md, SnapStart): without it, the first request after priming paid a full
    collection of every imported module's objects, 5 to 8 warm requests' worth."""
    module = importlib.import_module("functions.add_customer.app")
    gc.unfreeze()

    _priming_of(module)()

    assert gc.get_freeze_count() > 0
    assert gc.get_count()[2] == 0  # the oldest generation is collected: nothing pending


def test_priming_freezes_the_collector_before_the_end_to_end_requests(
    no_aws_call: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Measured (docs/performance.md, SnapStart, "The order of the last two steps"): collecting and freezing after
    the end-to-end requests left the consent page GET's first request at 1.27 to 1.45 warm ones; freezing first, then
    the requests, at 1.15 to 1.17, and no scenario worse."""
    import mci.snapstart_requests as requests

    frozen_at_requests: list[int] = []

    def recorded(*args: Any, **kwargs: Any) -> None:
        frozen_at_requests.append(gc.get_freeze_count())
        prime_end_to_end(*args, **kwargs)

    monkeypatch.setattr(requests, "prime_end_to_end", recorded)
    module = importlib.import_module("functions.consent_page.app")
    gc.unfreeze()

    _priming_of(module)()

    assert len(frozen_at_requests) == 1
    assert frozen_at_requests[0] > 0


END_TO_END = [f for f in HTTP_FUNCTIONS if any(route.key in REQUESTS for route in f.routes)]


@pytest.mark.parametrize("function", END_TO_END, ids=lambda f: f.name)
def test_a_listed_write_route_runs_one_valid_request_end_to_end_before_its_snapshot(
    function: Any, no_aws_call: None
) -> None:
    """The use case, the domain and the adapters run once, their DynamoDB calls answered from the synthetic world
    in the process: the route answers as to a real request, and its transaction is answered, not sent."""
    module = importlib.import_module(f"functions.{function.folder}.app")
    factories = _priming_of(module).args[1]
    for factory in factories:
        factory()
    seen: list[tuple[str, str]] = []
    aws.dynamodb().meta.events.register(
        "before-send", lambda request, event_name, **_: seen.append((event_name.rsplit(".", 1)[-1], request.url))
    )

    answers = prime_end_to_end(module.app, factories)

    assert answers == {route.key: SUCCESS[route.key] for route in function.routes if route.key in REQUESTS}
    assert seen, "its DynamoDB calls were answered here"
    assert {url for _, url in seen} == {PRIMED_URL}


def _primed_end_to_end_logging_at_info(module: types.ModuleType) -> dict[str, int]:
    level = logger.log_level
    logger.setLevel(logging.INFO)
    try:
        return prime_end_to_end(module.app, _priming_of(module).args[1])
    finally:
        logger.setLevel(level)


@pytest.mark.parametrize("function", END_TO_END, ids=lambda f: f.name)
def test_priming_writes_no_metric_and_no_log_line(
    function: Any, no_aws_call: None, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The funnel counts each real event once: the synthetic request's change is counted by nobody (no EMF line on
    stdout), and a successful priming logs nothing, even with the logger at INFO."""
    module = importlib.import_module(f"functions.{function.folder}.app")
    answers = _primed_end_to_end_logging_at_info(module)

    assert set(answers.values()) <= {200, 201}, answers
    captured = capfd.readouterr()
    assert captured.out == "", captured.out
    assert captured.err == "", captured.err
    assert [r.getMessage() for r in caplog.records] == []


def test_priming_leaves_no_synthetic_state_behind(no_aws_call: None) -> None:
    """No claim of the synthetic world survives it, the logger keeps none of its keys, and the function's use cases
    count with the real business metrics again."""
    from mci import wiring
    from mci.adapters.powertools_metrics import PowertoolsMetrics
    from mci.domain.claims import Claim

    module = importlib.import_module("functions.cancel_claim.app")

    _priming_of(module)()

    gc.unfreeze()
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, Claim) and o.partner_id == PARTNER] == []
    assert [o for o in gc.get_objects() if isinstance(o, PrimingTable)] == []
    assert logger.get_correlation_id() is None
    assert PARTNER not in json.dumps(logger.get_current_keys(), default=str)
    assert isinstance(wiring.business_metrics(), PowertoolsMetrics)
    assert wiring.lifecycle().claims._metrics is wiring.business_metrics()  # type: ignore[attr-defined]


def test_what_the_path_logs_at_info_while_priming_is_not_written(
    monkeypatch: pytest.MonkeyPatch, no_aws_call: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Decided: a successful priming writes no log line (the synthetic request is no one's request); our logger is
    at WARNING while it runs, so only a problem priming met would show."""
    from mci.domain.lifecycle import Lifecycle

    module = importlib.import_module("functions.cancel_claim.app")
    cancel = Lifecycle.cancel

    def logged(self: Lifecycle, *args: Any, **kwargs: Any) -> Any:
        logger.info("claim cancelled")
        return cancel(self, *args, **kwargs)

    monkeypatch.setattr(Lifecycle, "cancel", logged)
    answers = _primed_end_to_end_logging_at_info(module)

    assert answers == {"POST /claims/{claim_id}/cancellation": 200}
    assert [r.getMessage() for r in caplog.records] == []


def test_a_client_only_the_priming_needed_is_not_left_in_the_snapshot(no_aws_call: None) -> None:
    """Submitting needs a granted claim, whose consent link comes by email: the priming answers an SES client the
    submit function never uses, and forgets it afterwards."""
    module = importlib.import_module("functions.submit_claim.app")
    aws.reset_clients()
    try:
        _priming_of(module)()
        assert set(aws.created_clients()) == {"dynamodb"}
    finally:
        aws.reset_clients()


def test_after_priming_the_first_real_invocation_still_logs_a_cold_start(no_aws_call: None) -> None:
    """Priming's requests pass through the edge as Lambda calls it, whose logging marks the first invocation of a
    process as its cold start: the first real invocation after a restore must keep that mark, not priming's."""
    from aws_lambda_powertools.logging import logger as powertools_logging

    module = importlib.import_module("functions.consent_page.app")
    powertools_logging.is_cold_start = True

    _priming_of(module)()

    assert powertools_logging.is_cold_start is True


def test_with_another_operations_partner_its_routes_are_primed_as_operations(
    monkeypatch: pytest.MonkeyPatch, no_aws_call: None
) -> None:
    """The lifecycle takes MCI operations for the partner of OPERATIONS_PARTNER_ID (the OperationsPartnerId
    parameter): priming's operations requests are theirs, not the default's, or they would answer 403."""
    from mci import wiring

    monkeypatch.setenv("OPERATIONS_PARTNER_ID", "ops-team")
    wiring.reset()
    module = importlib.import_module("functions.review_claim.app")

    answers = prime_end_to_end(module.app, _priming_of(module).args[1])

    assert answers == {"POST /ops/claims/{claim_id}/review": 200}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_route_answering_4xx_while_priming_logs_one_warning_naming_it_and_the_hook_returns(
    monkeypatch: pytest.MonkeyPatch, no_aws_call: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A half-primed version is published whatever priming meets (best effort), but never silently: one WARNING per
    route that did not answer its success, not one per round."""
    from mci import snapstart_requests

    refused = "POST /claims/{claim_id}/cancellation"
    monkeypatch.setitem(
        snapstart_requests.REQUESTS, refused, lambda w: snapstart_requests.Request({"claim_id": w.claim_id}, {"x": 1})
    )
    module = importlib.import_module("functions.cancel_claim.app")

    _priming_of(module)()

    (warning,) = _warnings(caplog)
    assert refused in warning.getMessage()
    assert "422" in warning.getMessage()


def test_a_seed_that_raises_logs_one_warning_without_its_message_and_the_hook_returns(
    monkeypatch: pytest.MonkeyPatch, no_aws_call: None, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in the end-to-end part must not fail the init (Lambda would refuse to publish the version):
    one WARNING naming the step and the error's type, never its message (it may quote data)."""
    from mci.domain.consent import ConsentRequesting

    data = "customer" + "@example.com"  # not on the raising line: the traceback quotes source lines, not data

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(data)

    monkeypatch.setattr(ConsentRequesting, "request", boom)
    module = importlib.import_module("functions.submit_claim.app")

    _priming_of(module)()

    (warning,) = _warnings(caplog)
    written = warning.getMessage() + json.dumps(warning.__dict__, default=str)
    assert "seed" in warning.getMessage()
    assert "RuntimeError" in written
    assert data not in written


def test_priming_leaves_no_synthetic_request_on_the_resolver(no_aws_call: None) -> None:
    """Powertools keeps the last request and context on its routers' class: the snapshot must not hold priming's."""
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    module = importlib.import_module("functions.cancel_claim.app")

    _priming_of(module)()

    assert "current_event" not in vars(BaseRouter)
    assert "lambda_context" not in vars(BaseRouter)


def test_priming_keeps_the_business_metrics_that_were_in_use(no_aws_call: None) -> None:
    """A test or the local stack may have swapped the metrics: priming puts back those, not Powertools' EMF."""
    from mci import wiring
    from mci.adapters.memory import MemoryMetrics

    metrics = MemoryMetrics()
    wiring.use_metrics(metrics)
    module = importlib.import_module("functions.cancel_claim.app")
    try:
        _priming_of(module)()

        assert wiring.business_metrics() is metrics
    finally:
        wiring.use_metrics(None)
