"""The API on the local stack (SPEC §6): moto in server mode, the template's tables and functions, the JWT
authorizer, the service clock, on 127.0.0.1.

Every request is matched against the routes of template.yaml, its bearer JWT verified as the HTTP API
JWT authorizer would, and the handler of the function called with a real payload 2.0 event
(``local.gateway``). Routes registered with ``@local_route`` exist only here: this module's (tokens,
clock) and the local tools' (``local.stack``: mailbox, events, sweep, web app, Swagger UI).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

import jwt

from local.aws_env import REGION, fake_aws_environment, fake_client
from local.cloudformation import create_tables, function_environment, load_template, routes
from local.gateway import authorize, compile_route, find_route, http_response, lambda_event
from local.lambda_runtime import template_functions
from local.server import (
    HOST,
    LOCAL_ROUTES,
    BadRequest,
    LocalHTTPServer,
    LocalRequest,
    LocalResponse,
    LocalRouteHandler,
    find_local_route,
    http_server,
    local_route,
)
from local.tokens import AUDIENCE, TokenIssuer, issuer_for
from mci.domain.principal import OPERATIONS_PARTNER_ID

if TYPE_CHECKING:
    from mci.domain.clock import OffsetClock

DEFAULT_PORT = 3000
DEMO_DATA_PATH = Path(__file__).resolve().parent / "demo_data.json"
DEMO_PARTNER = "p-contoso-partners"
OPERATIONS_PARTNER = OPERATIONS_PARTNER_ID  # the template's OperationsPartnerId default
# Template values a person may override from their shell while debugging.
OVERRIDABLE = frozenset({"POWERTOOLS_LOG_LEVEL"})

log = logging.getLogger("local.api_stack")


class Tool(Protocol):
    """What a stack started alongside itself (a background loop) and stops with it."""

    def stop(self, timeout: float = ...) -> None: ...


class ApiStack:
    """moto in server mode, tables from the template, demo data, and the API on 127.0.0.1.

    ``start()`` serves in a background thread; ``.url`` is where; ``.stop()`` ends it and restores the
    environment. ``local.stack.LocalStack`` is this with the local tools; ``python -m local`` runs one.
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
        self.functions = template_functions(self.template)
        self.api_routes = sorted((compile_route(route) for route in routes(self.template)), key=lambda r: r.specificity)
        # Powertools keeps the current event of every resolver in one class attribute
        # (BaseRouter.current_event). On AWS a process runs one function; here the API functions share one,
        # so they take turns, or one handler reads another's request (a 401, 404 or 422 it never earned).
        api_turn = threading.Lock()
        for function_name in {api_route.route.function for api_route in self.api_routes}:
            self.functions[function_name].lock = api_turn
        # Called with (function logical id, what it printed) after every invocation (local.metrics reads EMF).
        self.output_listeners: list[Callable[[str, str], None]] = []
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
        self._tools: list[Tool] = []
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

    def start(self) -> Self:
        """Bind, start moto, provision from the template, start the tools, seed the demo data, then serve."""
        from mci.domain.clock import OffsetClock

        self._httpd = http_server(self.host, self.requested_port, self)
        try:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
            from moto.server import ThreadedMotoServer

            from local.atomic_moto import atomic_dynamodb_requests
            from local.moto_patches import wire_attribute_values_installed

            self._atomic_moto.enter_context(atomic_dynamodb_requests())  # DynamoDB's atomicity, until stop()
            self._atomic_moto.enter_context(wire_attribute_values_installed())  # same answers, less CPU (or a warning)
            self._moto = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
            self._moto.start()
            # moto's backends belong to the process, not to the server: a stack started after another one in
            # the same process (the browser tier starts one per module) begins empty, as `make run` does.
            _post_empty(f"{self.moto_url}/moto-api/reset")
            self._provision()
            self._tokens = TokenIssuer(issuer_for(self.url), AUDIENCE)
            self._clock = OffsetClock()
            self._use_environment()
            self._warm_up()
            self._tools = self._start_tools()
            if self.demo_data is not None:
                self.seed(json.loads(self.demo_data.read_text(encoding="utf-8")))
        except BaseException:
            self.stop()
            raise
        self._serving = threading.Thread(target=self._httpd.serve_forever, name="local-stack", daemon=True)
        self._serving.start()
        return self

    def _start_tools(self) -> list[Tool]:
        """What runs beside the API once moto and the environment are ready (``local.stack`` adds its tools)."""
        return []

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving and moto; put the environment and the service clock back as they were.

        The tools (background loops) are told to end first, then no new request is accepted; a sweep or
        poll still running gets what is left of ``timeout`` seconds to finish before moto goes.
        """
        deadline = time.monotonic() + timeout
        tools, self._tools = self._tools, []
        for tool in tools:
            tool.stop(timeout=0)  # only asks: all end together, not one after the other
        if self._httpd is not None:
            if self._serving is not None:
                self._httpd.shutdown()
                self._serving.join(timeout=5)
                self._serving = None
            self._httpd.server_close()
        for tool in tools:
            tool.stop(timeout=max(0.0, deadline - time.monotonic()))
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
            reset_services(clock=None)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ------------------------------------------------------------ provisioning

    def aws_client(self, service: str) -> Any:
        """A boto3 client of this stack's moto."""
        return fake_client(service, self.moto_url)

    def _provision(self) -> None:
        """The template's tables and SES resources, in moto."""
        self.table_names = create_tables(self.aws_client("dynamodb"), self.template)
        ses = self.aws_client("ses")
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
        # Never AWS: fake credentials, one region, every client pointed at moto.
        environment.update(fake_aws_environment(REGION))
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"
        environment["AWS_ENDPOINT_URL"] = self.moto_url
        environment["PUBLIC_BASE_URL"] = self.url
        self.environment = environment
        for name in [*environment, "AWS_PROFILE"]:
            self._saved_environment.setdefault(name, os.environ.get(name))
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(environment)
        reset_services(clock=self._clock)
        sender = environment.get("SENDER_EMAIL")
        if sender:
            self.aws_client("ses").verify_email_identity(EmailAddress=sender)

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
        local_paths = {path for _, path in self.local_routes}
        for api_route in self.api_routes:
            path = api_route.route.path
            if path.startswith("/_local") or path in local_paths:
                raise ValueError(f"template route {api_route.route_key} collides with a local-only route")

    # ------------------------------------------------------------ requests

    def handle(self, request: LocalRequest) -> LocalResponse:
        """Answer one request: a local route, or a template route through the authorizer and handler."""
        local = find_local_route(self.local_routes, request.method, request.path)
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
            verified = authorize(self.tokens, request, api_route.route.scopes)
            if isinstance(verified, LocalResponse):
                verified.log_as = f"{api_route.route_key} (authorizer)"
                return verified
            claims = verified
        host = request.headers.get("host", f"{self.host}:{self.port}")
        event = lambda_event(request, api_route, path_parameters, claims, host)
        request_id = str(event["requestContext"]["requestId"])
        function = self.functions[api_route.route.function]
        try:
            response = http_response(function.invoke(event, self._output_of(function.logical_id)), request_id)
        except Exception:
            traceback.print_exc()
            response = LocalResponse.message(500, "Internal Server Error", [("apigw-requestid", request_id)])
        response.log_as = f"{api_route.route_key} -> {function.logical_id}"
        return response

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Call a function's handler directly (local tools: the sweep, EventBridge deliveries)."""
        return self.functions[logical_id].invoke(event, self._output_of(logical_id))

    def _output_of(self, logical_id: str) -> Callable[[str], None] | None:
        """What hands a function's printed output to the listeners; None (nothing captured) without any."""
        if not self.output_listeners:
            return None

        def printed(text: str) -> None:
            for listener in list(self.output_listeners):
                listener(logical_id, text)

        return printed

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


def reset_services(clock: OffsetClock | None) -> None:
    """Forget clients and settings built from the old environment; install the service clock."""
    from mci import wiring
    from mci.domain.clock import SystemClock
    from mci.http import idempotency

    wiring.reset()
    idempotency.reset()
    wiring.use_clock(clock if clock is not None else SystemClock())


def _post_empty(url: str) -> None:
    """POST with no body to a loopback URL (moto's own API) and read the answer."""
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=30) as answer:  # noqa: S310
        answer.read()


# ---------------------------------------------------------------- local-only routes of the API stack


@local_route("GET", "/_local")
def local_index(stack: ApiStack, request: LocalRequest) -> LocalResponse:
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
def issue_token(stack: ApiStack, request: LocalRequest) -> LocalResponse:
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
def openid_configuration(stack: ApiStack, request: LocalRequest) -> LocalResponse:
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
def jwks(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The local issuer's public key."""
    return LocalResponse.json(200, stack.tokens.jwks())


def _clock_answer(stack: ApiStack) -> LocalResponse:
    from mci.domain.clock import isoformat

    clock = stack.clock
    return LocalResponse.json(200, {"now": isoformat(clock.now()), "offset_days": clock.offset / timedelta(days=1)})


@local_route("GET", "/_local/clock")
def read_clock(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The service clock: {now, offset_days}."""
    return _clock_answer(stack)


@local_route("POST", "/_local/clock")
def advance_clock(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """Move the service clock forward: {advance_days} (>= 0, may be fractional) -> {now}."""
    days = request.json_object().get("advance_days")
    if isinstance(days, bool) or not isinstance(days, int | float) or not math.isfinite(days) or days < 0:
        raise BadRequest("advance_days must be a number >= 0")
    stack.advance_clock(float(days))
    return _clock_answer(stack)
