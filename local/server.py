"""The local stack (SPEC §6): the real handlers behind an HTTP API lookalike, on moto in server mode.

    python -m local.server        # http://127.0.0.1:3000; PORT=... to change, PORT=0 for a free port

Every request is matched against the routes of template.yaml, its bearer JWT verified as the HTTP API
JWT authorizer would, and the handler of the function called with a real payload 2.0 event. Routes
under ``/_local`` (tokens, clock...), ``/openapi.json`` and ``/docs`` exist only here: they are the
``LOCAL_ROUTES`` table, which later local tools extend with ``@local_route``.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
import traceback
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import jwt

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "shared") not in sys.path:
    sys.path.insert(0, str(ROOT / "shared"))

from local import swagger  # noqa: E402
from local.cloudformation import (  # noqa: E402
    FUNCTION_TYPE,
    Route,
    create_tables,
    function_environment,
    load_template,
    routes,
)
from local.events import http_event  # noqa: E402
from local.tokens import (  # noqa: E402
    AUDIENCE,
    InvalidToken,
    TokenIssuer,
    authorizer_claims,
    has_any_scope,
    issuer_for,
)
from mci.domain.principal import OPERATIONS_PARTNER_ID  # noqa: E402

if TYPE_CHECKING:
    from local.events_feed import EventsFeed
    from local.sweeper import BackgroundSweep
    from mci.domain.clock import OffsetClock

HOST = "127.0.0.1"
DEFAULT_PORT = 3000
REGION = "us-east-1"
MAX_BODY_BYTES = 10 * 1024 * 1024  # the HTTP API payload limit
STOP_SECONDS = 2.0  # on SIGTERM or Ctrl-C, what a running sweep or events poll gets to finish
DEMO_DATA_PATH = Path(__file__).resolve().parent / "demo_data.json"
DEMO_PARTNER = "p-contoso-partners"
OPERATIONS_PARTNER = OPERATIONS_PARTNER_ID  # the template's OperationsPartnerId default

# Never AWS: fake credentials, one region, every client pointed at moto (AWS_ENDPOINT_URL, set at start).
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
# Template values a person may override from their shell while debugging.
OVERRIDABLE = frozenset({"POWERTOOLS_LOG_LEVEL"})
_TEXT_TYPES = re.compile(
    r"^(text/|application/(json|x-www-form-urlencoded|xml|javascript)|application/[\w.+-]+\+(json|xml))"
)
_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})

log = logging.getLogger("local.server")


# ---------------------------------------------------------------- requests and responses


class BadRequest(Exception):
    """A local route's body is not what it expects (answered 422)."""


@dataclass(frozen=True)
class LocalRequest:
    """One HTTP request as received: raw path and query, lower-case headers (repeats joined by ',')."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    source_ip: str = HOST

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (local routes accept JSON whatever the Content-Type says)."""
        try:
            parsed = json.loads(self.body or b"{}")
        except ValueError:
            raise BadRequest("the body must be a JSON object") from None
        if not isinstance(parsed, dict):
            raise BadRequest("the body must be a JSON object")
        return parsed


@dataclass
class LocalResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    log_as: str = ""  # what the request log names instead of the raw path (route key, function)

    @classmethod
    def json(cls, status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> LocalResponse:
        body = json.dumps(payload, indent=2, default=str).encode() + b"\n"
        return cls(status, [("Content-Type", "application/json"), *(headers or [])], body)

    @classmethod
    def message(cls, status: int, text: str, headers: list[tuple[str, str]] | None = None) -> LocalResponse:
        """API Gateway's own answers: ``{"message": "..."}``."""
        body = json.dumps({"message": text}).encode()
        return cls(status, [("Content-Type", "application/json"), *(headers or [])], body)

    @classmethod
    def problem(cls, status: int, detail: str) -> LocalResponse:
        body = {
            "type": "about:blank",
            "title": "Invalid request",
            "status": status,
            "detail": detail,
            "code": "validation_error",
        }
        return cls(status, [("Content-Type", "application/problem+json")], json.dumps(body).encode())


LocalRouteHandler = Callable[["LocalStack", LocalRequest], LocalResponse]

# (METHOD, path) -> handler of the routes that exist only locally. Later local tools (mailbox, sweep,
# events) add theirs with @local_route; a LocalStack copies the table when it is created.
LOCAL_ROUTES: dict[tuple[str, str], LocalRouteHandler] = {}


def local_route(method: str, path: str) -> Callable[[LocalRouteHandler], LocalRouteHandler]:
    def register(handler: LocalRouteHandler) -> LocalRouteHandler:
        LOCAL_ROUTES[method.upper(), path] = handler
        return handler

    return register


# ---------------------------------------------------------------- template routes


@dataclass(frozen=True)
class ApiRoute:
    """A template route, compiled for matching, and where its handler lives."""

    route: Route
    pattern: re.Pattern[str]

    @property
    def route_key(self) -> str:
        return "$default" if self.route.path == "$default" else f"{self.route.method} {self.route.path}"

    @property
    def specificity(self) -> tuple[int, int, int, int]:
        """Sort key, most specific first: as API Gateway prefers literal paths, then fewer variables."""
        path = self.route.path
        return (
            path == "$default",
            "+}" in path,
            path.count("{"),
            self.route.method == "ANY",
        )

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.route.method not in (method, "ANY"):
            return None
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


def compile_route(route: Route) -> ApiRoute:
    if route.path == "$default":
        return ApiRoute(route, re.compile(r".*"))
    pattern = ""
    for literal, name, greedy in re.findall(r"([^{]*)(?:\{([A-Za-z0-9_]+)(\+?)\})?", route.path):
        pattern += re.escape(literal)
        if name:
            pattern += f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"
    return ApiRoute(route, re.compile(pattern))


def find_route(api_routes: list[ApiRoute], method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
    for api_route in api_routes:
        parameters = api_route.match(method, path)
        if parameters is not None:
            return api_route, parameters
    return None


# ---------------------------------------------------------------- functions


@dataclass
class FakeLambdaContext:
    """The part of the Lambda context object handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    started_at: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started_at
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class LocalFunction:
    """One function's execution environment: its handler, called one event at a time as on Lambda."""

    def __init__(self, logical_id: str, code_uri: str, handler: str, memory: int, timeout: int) -> None:
        module_name, _, attribute = handler.rpartition(".")
        package = ".".join(part for part in code_uri.strip("/").split("/") if part)
        self.logical_id = logical_id
        self.module_name = f"{package}.{module_name}" if package else module_name
        self.attribute = attribute
        self.memory = memory
        self.timeout = timeout
        self.lock = threading.Lock()
        self._handler: Callable[[dict[str, Any], Any], Any] | None = None

    def load(self) -> Callable[[dict[str, Any], Any], Any]:
        if self._handler is None:
            handler: Callable[[dict[str, Any], Any], Any] = getattr(
                importlib.import_module(self.module_name), self.attribute
            )
            self._handler = handler
        return self._handler

    def invoke(self, event: dict[str, Any]) -> Any:
        # A module-level resolver holds the current event, so one invocation at a time per function.
        with self.lock:
            handler = self.load()
            context = FakeLambdaContext(self.logical_id, self.memory, self.timeout)
            return handler(event, context)


def _functions(template: Mapping[str, Any]) -> dict[str, LocalFunction]:
    defaults = dict((template.get("Globals") or {}).get("Function") or {})
    found: dict[str, LocalFunction] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != FUNCTION_TYPE:
            continue
        properties = {**defaults, **(resource.get("Properties") or {})}
        found[logical_id] = LocalFunction(
            logical_id,
            code_uri=str(properties.get("CodeUri", "")),
            handler=str(properties.get("Handler", "app.lambda_handler")),
            memory=int(properties.get("MemorySize", 128)),
            timeout=int(properties.get("Timeout", 3)),
        )
    return found


# ---------------------------------------------------------------- events and results


def _lambda_event(
    request: LocalRequest,
    api_route: ApiRoute,
    path_parameters: dict[str, str],
    claims: dict[str, str] | None,
    host: str,
) -> dict[str, Any]:
    """A payload 2.0 event, from the shared sample, as API Gateway would send for this request."""
    event = http_event(
        request.method,
        request.path,
        route_key=api_route.route_key,
        claims=claims,
        path_parameters=path_parameters or None,
        source_ip=request.source_ip,
    )
    headers = {name: value for name, value in request.headers.items() if name != "cookie"}
    event["headers"] = headers
    cookies = [c.strip() for c in request.headers.get("cookie", "").split(";") if c.strip()]
    if cookies:
        event["cookies"] = cookies
    else:
        event.pop("cookies", None)
    event["rawQueryString"] = request.query
    query: dict[str, str] = {}
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    if query:
        event["queryStringParameters"] = query
    else:
        event.pop("queryStringParameters", None)
    if request.body:
        content_type = request.headers.get("content-type", "application/json").lower()
        try:
            text = request.body.decode("utf-8") if _TEXT_TYPES.match(content_type) else None
        except UnicodeDecodeError:
            text = None
        if text is None:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
            event["isBase64Encoded"] = False
    context = event["requestContext"]
    context["domainName"] = host
    context["domainPrefix"] = host.split(".", maxsplit=1)[0]
    context["http"]["userAgent"] = request.headers.get("user-agent", "")
    context["time"] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    return event


def _http_response(result: Any, request_id: str) -> LocalResponse:
    """Turn a handler's return value into the response API Gateway would send (payload 2.0 rules)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # 2.0 infers 200 and JSON when the function returns something without a statusCode.
        body = result if isinstance(result, str) else json.dumps(result)
        return LocalResponse(200, [("Content-Type", "application/json")], body.encode())
    status = int(result["statusCode"])
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        if name.lower() not in _HOP_BY_HOP:
            headers.append((str(name), str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if name.lower() not in _HOP_BY_HOP:
            headers.extend((str(name), str(v)) for v in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw = result.get("body")
    text = "" if raw is None else raw if isinstance(raw, str) else json.dumps(raw)
    payload = base64.b64decode(text) if result.get("isBase64Encoded") else text.encode()
    headers.append(("apigw-requestid", request_id))
    return LocalResponse(status, headers, payload)


# ---------------------------------------------------------------- the stack


class LocalStack:
    """moto in server mode, tables from the template, demo data, and the API on 127.0.0.1.

    ``LocalStack(port=0).start()`` serves in a background thread; ``.url`` is where; ``.stop()`` ends
    it and restores the environment. ``python -m local.server`` runs one in the foreground.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        host: str = HOST,
        demo_data: Path | None = DEMO_DATA_PATH,
        template_path: Path | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.demo_data = demo_data
        self.template = load_template(template_path) if template_path else load_template()
        self.local_routes: dict[tuple[str, str], LocalRouteHandler] = dict(LOCAL_ROUTES)
        self.functions = _functions(self.template)
        self.api_routes = sorted((compile_route(route) for route in routes(self.template)), key=lambda r: r.specificity)
        # Powertools keeps the current event of every resolver in one class attribute
        # (BaseRouter.current_event). On AWS a process runs one function; here the API functions share one,
        # so they take turns, or one handler reads another's request (a 401, 404 or 422 it never earned).
        api_turn = threading.Lock()
        for function_name in {api_route.route.function for api_route in self.api_routes}:
            self.functions[function_name].lock = api_turn
        self.environment: dict[str, str] = {}
        self.table_names: dict[str, str] = {}
        self._saved_environment: dict[str, str | None] = {}
        self._httpd: LocalHTTPServer | None = None
        self._atomic_moto = contextlib.ExitStack()
        self._serving: threading.Thread | None = None
        self._moto: Any = None
        self._clock: OffsetClock | None = None
        self._clock_lock = threading.Lock()
        self._tokens: TokenIssuer | None = None
        self._sweeper: BackgroundSweep | None = None
        self._events_feed: EventsFeed | None = None
        self._openapi: dict[str, Any] | None = None
        self._openapi_lock = threading.Lock()
        self._check_local_routes()

    # ------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        if self._httpd is None:
            return self.requested_port
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def moto_url(self) -> str:
        host, port = self._moto.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def tokens(self) -> TokenIssuer:
        if self._tokens is None:
            raise RuntimeError("the local stack is not started")
        return self._tokens

    @property
    def clock(self) -> OffsetClock:
        if self._clock is None:
            raise RuntimeError("the local stack is not started")
        return self._clock

    # ------------------------------------------------------------ lifecycle

    def start(self) -> LocalStack:
        """Bind, start moto, provision from the template, seed the demo data, then serve."""
        from mci.domain.clock import OffsetClock

        self._httpd = LocalHTTPServer((self.host, self.requested_port), _handler_class(self))
        try:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
            from moto.server import ThreadedMotoServer

            from local.atomic_moto import atomic_dynamodb_requests

            self._atomic_moto.enter_context(atomic_dynamodb_requests())  # DynamoDB's atomicity, until stop()
            self._moto = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
            self._moto.start()
            # moto's backends belong to the process, not to the server: a stack started after another one in
            # the same process (the browser tier starts one per module) begins empty, as `make run` does.
            _post_empty(f"{self.moto_url}/moto-api/reset")
            self._provision()
            self._tokens = TokenIssuer(issuer_for(self.url), AUDIENCE)
            self._clock = OffsetClock()
            self._use_environment()
            mailbox.attach(self)  # stamps every email with its send time from now on
            self._warm_up()
            self._events_feed = events_feed.start(self)  # the stream publisher, every LOCAL_EVENTS_POLL_SECONDS
            if self.demo_data is not None:
                self.seed(json.loads(self.demo_data.read_text(encoding="utf-8")))
        except BaseException:
            self.stop()
            raise
        self._serving = threading.Thread(target=self._httpd.serve_forever, name="local-stack", daemon=True)
        self._serving.start()
        self._sweeper = sweeper.start_background(self)  # every LOCAL_SWEEP_SECONDS (default 60; 0: never)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving and moto; put the environment and the service clock back as they were.

        The background loops are told to end first, then no new request is accepted; a sweep or poll
        still running gets what is left of ``timeout`` seconds to finish before moto goes.
        """
        deadline = time.monotonic() + timeout
        loops = [loop for loop in (self._sweeper, self._events_feed) if loop is not None]
        self._sweeper = self._events_feed = None
        for loop in loops:
            loop.stop(timeout=0)  # only asks: both end together, not one after the other
        if self._httpd is not None:
            if self._serving is not None:
                self._httpd.shutdown()
                self._serving.join(timeout=5)
                self._serving = None
            self._httpd.server_close()
        for loop in loops:
            loop.stop(timeout=max(0.0, deadline - time.monotonic()))
        if self._moto is not None:
            with contextlib.suppress(Exception):
                self._moto.stop()
            self._moto = None
        self._atomic_moto.close()
        if self._saved_environment:
            for name, value in self._saved_environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            self._saved_environment = {}
            _reset_services(clock=None)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ------------------------------------------------------------ provisioning

    def _aws_client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            region_name=REGION,
            endpoint_url=self.moto_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )

    def _provision(self) -> None:
        """The template's tables and SES resources, in moto."""
        self.table_names = create_tables(self._aws_client("dynamodb"), self.template)
        ses = self._aws_client("ses")
        for logical_id, resource in (self.template.get("Resources") or {}).items():
            if isinstance(resource, dict) and resource.get("Type") == "AWS::SES::ConfigurationSet":
                with contextlib.suppress(ses.exceptions.ConfigurationSetAlreadyExistsException):
                    ses.create_configuration_set(ConfigurationSet={"Name": logical_id})

    def _use_environment(self) -> None:
        """The handlers' environment as the template sets it, pointed at moto and this server."""
        environment: dict[str, str] = {}
        for logical_id in sorted(self.functions):
            for name, value in function_environment(self.template, logical_id, self.table_names).items():
                if name in environment and environment[name] != value:
                    log.warning("%s differs between functions; the local stack uses %r", name, value)
                    continue
                environment[name] = value
        for name in OVERRIDABLE:
            if os.environ.get(name):
                environment[name] = os.environ[name]
        environment.update(FAKE_AWS_ENVIRONMENT)
        environment["AWS_ENDPOINT_URL"] = self.moto_url
        environment["PUBLIC_BASE_URL"] = self.url
        self.environment = environment
        for name in [*environment, "AWS_PROFILE"]:
            self._saved_environment.setdefault(name, os.environ.get(name))
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(environment)
        _reset_services(clock=self._clock)
        sender = environment.get("SENDER_EMAIL")
        if sender:
            self._aws_client("ses").verify_email_identity(EmailAddress=sender)

    def _warm_up(self) -> None:
        """Import every handler now, so the first request is fast. A broken one fails only its routes
        (500, traceback in the console), as a broken Lambda would."""
        for function in self.functions.values():
            try:
                function.load()
            except Exception:
                traceback.print_exc()
                log.warning("%s could not be imported; its routes will answer 500", function.logical_id)

    def seed(self, reference_data: Mapping[str, Any]) -> None:
        """Load reference data through the real POST /ops/reference-data, as operations would."""
        token = self.tokens.issue(OPERATIONS_PARTNER, ["mci_operations"], sub="local-seed")
        request = LocalRequest(
            method="POST",
            path="/ops/reference-data",
            query="",
            headers={
                "authorization": f"Bearer {token}",
                "content-type": "application/json",
                "host": f"{self.host}:{self.port}",
            },
            body=json.dumps(reference_data).encode(),
        )
        response = self.handle(request)
        if response.status != 200:
            raise RuntimeError(f"seeding reference data failed: {response.status} {response.body.decode()}")

    def _check_local_routes(self) -> None:
        for api_route in self.api_routes:
            path = api_route.route.path
            if path.startswith("/_local") or path in (swagger.OPENAPI_JSON_PATH, swagger.DOCS_PATH):
                raise ValueError(f"template route {api_route.route_key} collides with a local-only route")

    # ------------------------------------------------------------ requests

    def handle(self, request: LocalRequest) -> LocalResponse:
        """Answer one request: a local route, or a template route through the authorizer and handler."""
        local = self.local_routes.get((request.method, request.path)) or self._local_pattern_route(request)
        if local is not None:
            try:
                return local(self, request)
            except BadRequest as error:
                return LocalResponse.problem(422, str(error))
        found = find_route(self.api_routes, request.method, request.path)
        if found is None:
            return LocalResponse.message(404, "Not Found")
        api_route, path_parameters = found
        claims: dict[str, str] | None = None
        if api_route.route.authorized:
            verified = self.authorize(request, api_route.route.scopes)
            if isinstance(verified, LocalResponse):
                verified.log_as = f"{api_route.route_key} (authorizer)"
                return verified
            claims = verified
        host = request.headers.get("host", f"{self.host}:{self.port}")
        event = _lambda_event(request, api_route, path_parameters, claims, host)
        request_id = str(event["requestContext"]["requestId"])
        function = self.functions[api_route.route.function]
        try:
            response = _http_response(function.invoke(event), request_id)
        except Exception:
            traceback.print_exc()
            response = LocalResponse.message(500, "Internal Server Error", [("apigw-requestid", request_id)])
        response.log_as = f"{api_route.route_key} -> {function.logical_id}"
        return response

    def _local_pattern_route(self, request: LocalRequest) -> LocalRouteHandler | None:
        """A local route with {variables} in its path (``/_local/mailbox/{n}``); it reads them from the path."""
        for (method, path), handler in self.local_routes.items():
            if method != request.method or "{" not in path:
                continue
            if re.fullmatch(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)), request.path):
                return handler
        return None

    def authorize(self, request: LocalRequest, scopes: tuple[str, ...] = ()) -> dict[str, str] | LocalResponse:
        """The JWT authorizer: verified claims as the Lambda sees them, API Gateway's 401 for a token it
        refuses, or its 403 for a valid token without one of the route's ``scopes``."""
        header = request.headers.get("authorization", "").strip()
        if not header:
            return LocalResponse.message(401, "Unauthorized")
        token = header[7:].strip() if header[:7].lower() == "bearer " else header
        try:
            claims = self.tokens.verify(token)
        except InvalidToken as error:
            challenge = f'Bearer error="invalid_token" error_description="{error}"'.replace("\n", " ")
            return LocalResponse.message(401, "Unauthorized", [("WWW-Authenticate", challenge)])
        if not has_any_scope(claims, scopes):
            return LocalResponse.message(403, "Forbidden")
        return authorizer_claims(claims)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Call a function's handler directly (local tools: the sweep, EventBridge deliveries)."""
        return self.functions[logical_id].invoke(event)

    def advance_clock(self, days: float) -> None:
        with self._clock_lock:
            self.clock.advance(timedelta(days=days))

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document, generated from the code on first use."""
        with self._openapi_lock:
            if self._openapi is None:
                from local.openapi import build_document

                document = build_document(self.template)
                document["info"]["description"] += (
                    "\n\nLocal stack: get a token with `POST /_local/tokens` "
                    '`{"partner_id": "p-contoso-partners", "roles": ["incentives_user"]}` '
                    "and paste it under Authorize."
                )
                self._openapi = document
            return self._openapi


def _reset_services(clock: OffsetClock | None) -> None:
    """Forget clients and settings built from the old environment; install the service clock."""
    from mci import wiring
    from mci.domain.clock import SystemClock
    from mci.http import idempotency

    wiring.reset()
    idempotency.reset()
    wiring.use_clock(clock if clock is not None else SystemClock())


# ---------------------------------------------------------------- the HTTP server


class LocalHTTPServer(ThreadingHTTPServer):
    """A thread per connection, as ThreadingHTTPServer, sized for bursts and quick to stop."""

    request_queue_size = 256  # the listen backlog; socketserver's 5 reset bursts of new connections
    daemon_threads = True
    block_on_close = False  # stopping never waits on a connection (an idle keep-alive one lasts 60 s)


def _handler_class(stack: LocalStack) -> type[BaseHTTPRequestHandler]:
    class Handler(_RequestHandler):
        pass

    Handler.stack = stack
    return Handler


class _RequestHandler(BaseHTTPRequestHandler):
    stack: LocalStack
    protocol_version = "HTTP/1.1"
    server_version = "mci-local-stack"
    sys_version = ""
    timeout = 60  # idle keep-alive connections end

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: _serve logs one line per request, without query strings."""

    def _serve(self) -> None:
        started = time.monotonic()
        path, _, query = self.path.partition("?")
        try:
            body = self._read_body()
        except _TooLarge:
            self.close_connection = True
            response = LocalResponse.message(413, "Request Entity Too Large")
        except ValueError:
            self.close_connection = True
            response = LocalResponse.message(400, "Bad Request")
        else:
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]},{value}" if key in headers else value
            request = LocalRequest(self.command, path, query, headers, body, self.client_address[0])
            try:
                response = self.stack.handle(request)
            except Exception:
                traceback.print_exc()
                response = LocalResponse.message(500, "Internal Server Error")
        try:
            self._write(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away before the answer: nothing to report
        elapsed = (time.monotonic() - started) * 1000
        what = response.log_as or f"{self.command} {path}"
        print(f"{time.strftime('%H:%M:%S')} {what} {response.status} {elapsed:.0f}ms", flush=True)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return b"".join(self._chunks())
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_BODY_BYTES:
            raise _TooLarge
        return self.rfile.read(length) if length else b""

    def _chunks(self) -> Iterator[bytes]:
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():
                    pass  # trailers
                return
            total += size
            if total > MAX_BODY_BYTES:
                raise _TooLarge
            yield self.rfile.read(size)
            self.rfile.readline()

    def _write(self, response: LocalResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class _TooLarge(Exception):
    pass


# ---------------------------------------------------------------- local-only routes


@local_route("GET", "/_local")
def local_index(stack: LocalStack, request: LocalRequest) -> LocalResponse:
    """This list of local-only routes."""
    return LocalResponse.json(
        200,
        {
            "routes": [
                {"method": method, "path": path, "does": (handler.__doc__ or "").strip().splitlines()[0]}
                for (method, path), handler in sorted(stack.local_routes.items(), key=lambda r: r[0][1])
            ]
        },
    )


@local_route("POST", "/_local/tokens")
def issue_token(stack: LocalStack, request: LocalRequest) -> LocalResponse:
    """A JWT signed by the local key: {partner_id, roles, sub?, expires_in?, claims?} -> {token}."""
    body = request.json_object()
    partner_id = body.get("partner_id")
    roles = body.get("roles", [])
    sub = body.get("sub")
    expires_in = body.get("expires_in", None)
    extra = body.get("claims", {})
    if not isinstance(partner_id, str) or not partner_id:
        raise BadRequest("partner_id must be a non-empty string")
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise BadRequest("roles must be a list of role names")
    if sub is not None and (not isinstance(sub, str) or not sub):
        raise BadRequest("sub must be a non-empty string")
    if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, int)):
        raise BadRequest("expires_in must be a whole number of seconds (negative: already expired)")
    if not isinstance(extra, dict):
        raise BadRequest("claims must be an object of extra claims")
    options: dict[str, Any] = {"sub": sub, "extra_claims": extra}
    if expires_in is not None:
        options["expires_in"] = expires_in
    token = stack.tokens.issue(partner_id, roles, **options)
    claims = jwt.decode(token, options={"verify_signature": False})
    return LocalResponse.json(200, {"token": token, "token_type": "Bearer", "claims": claims})


@local_route("GET", "/_local/.well-known/openid-configuration")
def openid_configuration(stack: LocalStack, request: LocalRequest) -> LocalResponse:
    """The local issuer's discovery document."""
    issuer = stack.tokens.issuer
    return LocalResponse.json(
        200,
        {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
        },
    )


@local_route("GET", "/_local/.well-known/jwks.json")
def jwks(stack: LocalStack, request: LocalRequest) -> LocalResponse:
    """The local issuer's public key."""
    return LocalResponse.json(200, stack.tokens.jwks())


def _clock_answer(stack: LocalStack) -> LocalResponse:
    from mci.domain.clock import isoformat

    clock = stack.clock
    return LocalResponse.json(200, {"now": isoformat(clock.now()), "offset_days": clock.offset / timedelta(days=1)})


@local_route("GET", "/_local/clock")
def read_clock(stack: LocalStack, request: LocalRequest) -> LocalResponse:
    """The service clock: {now, offset_days}."""
    return _clock_answer(stack)


@local_route("POST", "/_local/clock")
def advance_clock(stack: LocalStack, request: LocalRequest) -> LocalResponse:
    """Move the service clock forward: {advance_days} (>= 0, may be fractional) -> {now}."""
    days = request.json_object().get("advance_days")
    if isinstance(days, bool) or not isinstance(days, int | float) or not math.isfinite(days) or days < 0:
        raise BadRequest("advance_days must be a number >= 0")
    stack.advance_clock(float(days))
    return _clock_answer(stack)


@local_route("GET", swagger.OPENAPI_JSON_PATH)
def openapi_json(stack: LocalStack, request: LocalRequest) -> LocalResponse:
    """The OpenAPI document of the API."""
    return LocalResponse.json(200, stack.openapi())


def _asset_route(path: str) -> LocalRouteHandler:
    def serve(stack: LocalStack, request: LocalRequest) -> LocalResponse:
        asset = swagger.assets()[path]
        headers = [
            ("Content-Type", asset.content_type),
            ("Content-Security-Policy", swagger.CONTENT_SECURITY_POLICY),
            ("Cache-Control", "no-cache"),
        ]
        return LocalResponse(200, headers, asset.body)

    serve.__doc__ = "Swagger UI (offline)." if path == swagger.DOCS_PATH else "A Swagger UI asset."
    return serve


for _path in (
    swagger.DOCS_PATH,
    f"{swagger.DOCS_PATH}/swagger-initializer.js",
    f"{swagger.DOCS_PATH}/swagger-ui-bundle.js",
    f"{swagger.DOCS_PATH}/swagger-ui.css",
):
    local_route("GET", _path)(_asset_route(_path))


# Local tools in their own modules register their routes with @local_route on import.
from local import events_feed, mailbox, sweeper, webapp  # noqa: E402

# ---------------------------------------------------------------- command line


def banner(stack: LocalStack) -> str:
    url = stack.url
    token = (
        f"curl -s -X POST {url}/_local/tokens -H 'Content-Type: application/json' \\\n"
        '      -d \'{"partner_id":"%s","roles":["%s"]}\' \\\n'
        "      | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])')"
    )
    return f"""
MCI engagement customers: local stack (real handlers, moto at {stack.moto_url}, demo data loaded)

  App      {url}{webapp.APP_PATH} (the partner web app: sign in, engagements, Customers page; docs/web.md)
  API      {url}
  Docs     {url}/docs (Swagger UI)   {url}/openapi.json   docs/local-stack.md
  Local    {url}/_local (tokens, clock, mailbox, sweep, events; never deployed)   Mail  {url}/_local/mailbox
  Events   {url}/_local/events (domain events on the bus, from the table's stream)

A partner user's token (p-contoso-partners, incentives_user), and an operations token:

  TOKEN=$({token % (DEMO_PARTNER, "incentives_user")}
  OPS_TOKEN=$({token % (OPERATIONS_PARTNER, "mci_operations")}

Then, with the demo data (location 1234567, customer domain fabrikam.com):

  curl -s {url}/engagements -H "Authorization: Bearer $TOKEN"

  curl -s -X POST {url}/eligibility-checks -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' \\
      -d '{{"location_id":"1234567","identifier":{{"type":"domain","value":"fabrikam.com"}}}}'

  curl -s -X POST {url}/customers -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \\
      -d '{{"friendly_name":"Fabrikam migration","location_id":"1234567",
           "identifier":{{"type":"domain","value":"fabrikam.com"}},"engagement_ids":["e-azure-migrate"],
           "customer_contact":{{"name":"Ana Garcia","email":"ana@fabrikam.com","language":"es"}},
           "partner_contact":{{"name":"Sam Lee","email":"sam@contoso-partners.com"}}}}'

  curl -s -X POST {url}/_local/clock -d '{{"advance_days": 31}}'

Ctrl-C stops.
"""


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    port = int(os.environ.get("PORT") or DEFAULT_PORT)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Ctrl-C and SIGTERM both end the loop below, so stopping always goes through stack.stop().
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stack = LocalStack(port=port)
    try:
        stack.start()
    except OSError as error:
        print(f"cannot listen on {HOST}:{port}: {error.strerror} (PORT=... picks another)", file=sys.stderr)
        return 1
    print(banner(stack), flush=True)
    print(f"Listening on {stack.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        stack.stop(timeout=STOP_SECONDS)
        print("Local stack stopped.", flush=True)
    return 0


if __name__ == "__main__":
    # Run the main of the module named local.server, whose LOCAL_ROUTES the local tools (mailbox, sweeper)
    # registered into, not of this __main__ copy of it.
    from local.server import main as _main

    code = _main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is stopped and the output flushed. The interpreter's own shutdown would now collect the
    # whole heap (moto's tables and their copies: hundreds of MB after a busy session), which took over
    # 10 s after the race tests; a process that is done has nothing left to free.
    os._exit(code)


def _post_empty(url: str) -> None:
    """POST with no body to a loopback URL (moto's own API) and read the answer."""
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=30) as answer:  # noqa: S310
        answer.read()
