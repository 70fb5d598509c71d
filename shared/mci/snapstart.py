"""Lambda SnapStart's runtime hooks (issue 16, item 3): prime a function before its snapshot, renew after a restore.

With SnapStart on (template parameter ``EnableSnapStart``), Lambda initialises a function once when it
publishes a version, runs the before-snapshot hooks, and snapshots the memory; every execution environment
then starts from that snapshot and runs the after-restore hooks before its first request.
``snapshot_restore_py`` is provided by Lambda's Python runtimes (3.12 and later); where it is missing (the
tests, the local stack) the hooks are only kept here, and ``run_before_snapshot`` / ``run_after_restore`` run
them as Lambda would (the bench, the tests).

Before the snapshot (``prime``): what the first request would otherwise do. Every route's module is imported
with the handler module; the wiring factories the function uses create their boto3 clients, adapters and
use cases; every client operation those adapters call (their ``AWS_CALLS``, and Powertools idempotency's
where a route takes an Idempotency-Key) is called once and answered in this process
(``mci.adapters.aws_priming``: botocore builds each operation's model, serializer, endpoint, signature and
parser at its first call; nothing is sent); every email template is read; and each route answers one
request that stops before any AWS call (no token: 401; a body with an unknown field: 422; a token that
cannot be one: the neutral page), which builds its validation models, the middleware stack and the problem
responses. Then the garbage collector collects and freezes what is left (``gc.freeze``: the snapshot's objects
move to a generation it never scans again); without it the first request after a restore paid a full collection
over every imported module's objects (measured: 5 to 8 warm requests' worth, docs/performance.md). Last, the
routes listed in ``mci.snapstart_requests`` answer valid requests end to end, their AWS calls answered from a
synthetic world in this process, counting no metric and logging nothing (that module says how). In that order:
collecting and freezing after those requests left the consent page GET's first request at 1.27 to 1.45 warm ones,
freezing before them at 1.15 to 1.17 (docs/performance.md, "The order of the last two steps").

After a restore (``renew``): every restored copy shares the snapshot's memory, so
- ``random``'s state (the jitter of ``mci.domain.retry``, botocore's retry backoff)
  is reseeded from ``os.urandom``: otherwise every copy would draw the same jitter and retry in step;
- pooled connections are closed (priming makes no network call, so there should be none; a connection in
  the snapshot would be one socket shared by every copy);
- ``uuid.uuid4`` (claim and request ids) and ``secrets`` (consent tokens) read ``os.urandom`` at every call:
  unique in every copy, nothing to renew. The service clock reads the time at every call.
"""

from __future__ import annotations

import gc
import importlib
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

Hook = Callable[[], object]
BEFORE_SNAPSHOT: list[Hook] = []
AFTER_RESTORE: list[Hook] = []
RUNTIME_HOOKS = "snapshot_restore_py"
# Not a token, an id or anything a lookup would be made for: answered before any AWS call.
PRIME_PARAMETER = "snapstart-prime"
PRIME_BODY = '{"snapstart_prime": true}'  # an unknown field: every strict request model refuses it (422)
_PARAMETER = re.compile(r"\{[^/]+?\}")


def _runtime() -> ModuleType | None:
    try:
        return importlib.import_module(RUNTIME_HOOKS)
    except ImportError:
        return None


def _register(kind: str, hooks: list[Hook], hook: Hook) -> None:
    hooks.append(hook)
    runtime = _runtime()
    if runtime is not None:
        getattr(runtime, kind)(hook)


def on_snapshot(app: APIGatewayHttpResolver, *factories: Callable[[], object]) -> None:
    """Register an HTTP function's hooks: before its snapshot ``prime(app, factories)``, after each restore
    ``renew``. Called once by the handler module, beside its resolver."""
    _register("register_before_snapshot", BEFORE_SNAPSHOT, partial(prime, app, factories))
    if renew not in AFTER_RESTORE:
        _register("register_after_restore", AFTER_RESTORE, renew)


def prime_event(
    method: str,
    path: str,
    *,
    parameters: dict[str, str] | None = None,
    body: str = PRIME_BODY,
    claims: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A payload 2.0 request as API Gateway would pass it: by default without a token, each path parameter one
    that names nothing, and a body every strict request model refuses (``mci.snapstart_requests``: valid ones)."""
    parameters = {name.strip("{}"): PRIME_PARAMETER for name in _PARAMETER.findall(path)} | (parameters or {})
    concrete = _PARAMETER.sub(lambda found: parameters[found.group().strip("{}")], path)
    http = {"method": method, "path": concrete, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "-"}
    route_key = f"{method} {path}"
    context: dict[str, Any] = {"http": http, "requestId": PRIME_PARAMETER, "routeKey": route_key, "stage": "$default"}
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": concrete,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"} if method == "POST" else {},
        "requestContext": context,
        "pathParameters": parameters or None,
        "body": body if method == "POST" else None,
        "isBase64Encoded": False,
    }


def _built_by(roots: Iterable[object]) -> Iterator[object]:
    """Every object of ours (``mci``) reachable from ``roots`` through their attributes: use cases, adapters..."""
    seen: set[int] = set()
    pending = list(roots)
    while pending:
        found = pending.pop()
        if id(found) in seen or not type(found).__module__.startswith("mci."):
            continue
        seen.add(id(found))
        yield found
        slots = (name for kind in type(found).__mro__ for name in getattr(kind, "__slots__", ()))
        pending.extend([*getattr(found, "__dict__", {}).values(), *(getattr(found, n, None) for n in slots)])


def _takes_key(app: APIGatewayHttpResolver) -> bool:
    from mci.http.idempotency import KEY_MARKER

    return any(KEY_MARKER in (route.openapi_extensions or {}) for route in routes(app))


def routes(app: APIGatewayHttpResolver) -> list[Any]:
    # Powertools keeps routes in these lists (pinned 3.x; local/openapi.py reads them too).
    return [*app._static_routes, *app._dynamic_routes]


def aws_calls(app: APIGatewayHttpResolver, built: Iterable[object]) -> dict[str, list[str]]:
    """Service -> the client operations the function makes: its adapters' ``AWS_CALLS`` (the adapters its
    factories built), and Powertools idempotency's when one of its routes takes an Idempotency-Key."""
    from mci.http import idempotency

    calls = {call for found in _built_by(built) for call in getattr(found, "AWS_CALLS", ())}
    if _takes_key(app):
        calls.update(idempotency.AWS_CALLS)
    by_service: dict[str, list[str]] = {}
    for call in sorted(calls):
        service, _, operation = call.partition(":")
        by_service.setdefault(service, []).append(operation)
    return by_service


def prime(app: APIGatewayHttpResolver, factories: Sequence[Callable[[], object]]) -> dict[str, int]:
    """What the first request would do, done before the snapshot; every route's answer to its priming request."""
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from mci.adapters.aws import CLIENTS
    from mci.adapters.aws_priming import prime_operations
    from mci.emails.render import load_templates
    from mci.http import idempotency
    from mci.settings import get_settings
    from mci.snapstart_requests import prime_end_to_end

    built = [factory() for factory in factories]
    for service, operations in aws_calls(app, built).items():
        prime_operations(CLIENTS[service](), operations, get_settings().table_name)
    if _takes_key(app):
        idempotency.prime()
    load_templates()
    _inspect_handlers(app)
    answers: dict[str, int] = {}
    for route in routes(app):
        event = prime_event(route.method, route.openapi_path)
        answers[event["routeKey"]] = int(app.resolve(event, LambdaContext())["statusCode"])
    gc.collect()
    gc.freeze()
    prime_end_to_end(app, tuple(factories))
    _forget_last_request()
    return answers


def _forget_last_request() -> None:
    """Powertools keeps the last request's event and context on its routers' class (``BaseRouter``, pinned 3.x)
    until the next request: the snapshot would hold priming's synthetic one. Before any request they are unset."""
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    for name in ("current_event", "lambda_context"):
        if name in vars(BaseRouter):
            delattr(BaseRouter, name)


def _inspect_handlers(app: APIGatewayHttpResolver) -> None:
    """Powertools inspects a route's handler at its first call that passes validation (does it take Depends()
    or a Request parameter?) and keeps the answers on the route (pinned 3.x); the POST routes' priming
    requests stop at validation, before it."""
    from aws_lambda_powertools.event_handler import api_gateway

    for route in routes(app):
        _ = route.has_dependencies
        if not route.request_param_name_checked:
            route.request_param_name = api_gateway._find_request_param_name(route.func)
            route.request_param_name_checked = True


def renew() -> None:
    """After a restore: what must not be shared between restored copies (module docstring)."""
    from mci.adapters.aws import close_connections

    random.seed()  # from os.urandom
    close_connections()


def run_before_snapshot() -> None:
    """What Lambda runs before it takes the snapshot (in registration order here; Lambda runs them in reverse)."""
    for hook in BEFORE_SNAPSHOT:
        hook()


def run_after_restore() -> None:
    for hook in AFTER_RESTORE:
        hook()
