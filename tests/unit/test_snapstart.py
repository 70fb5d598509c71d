"""SnapStart's hooks (issue 16, item 3): every HTTP function primes before its snapshot, without an AWS call,
and renews what restored copies must not share. Lambda's ``snapshot_restore_py`` is absent here, as in the
local stack; a stand-in shows the hooks reach it when it is there."""

from __future__ import annotations

import gc
import importlib
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
from mci.adapters.aws_priming import PRIMED_URL
from mci.emails import render
from mci.http.resolver import new_resolver

HTTP_FUNCTIONS = [f for f in FUNCTIONS if f.routes]
# What a request that stops before any AWS call answers: no token, a body with an unknown field, a token that
# cannot be one (the consent page's neutral page).
ANSWERED_EARLY = {401, 404, 422}


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
