"""The local stack's HTTP plumbing: requests and responses, the ``local_route`` registry, the threaded server.

Nothing here knows moto, the template or a handler: the server hands each request to a ``Responder``
(``local.api_stack.ApiStack.handle``) and writes what it answers, one log line per request.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

HOST = "127.0.0.1"
MAX_BODY_BYTES = 10 * 1024 * 1024  # the HTTP API payload limit


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


# ---------------------------------------------------------------- routes that exist only locally

# A local route's handler receives the stack serving the request (a ``local.api_stack.ApiStack``).
LocalRouteHandler = Callable[[Any, LocalRequest], LocalResponse]

# (METHOD, path) -> handler of the routes that exist only locally. Each local tool's module adds its own
# with @local_route when imported; a stack copies the table when it is created.
LOCAL_ROUTES: dict[tuple[str, str], LocalRouteHandler] = {}


def local_route(method: str, path: str) -> Callable[[LocalRouteHandler], LocalRouteHandler]:
    def register(handler: LocalRouteHandler) -> LocalRouteHandler:
        LOCAL_ROUTES[method.upper(), path] = handler
        return handler

    return register


def find_local_route(
    local_routes: Mapping[tuple[str, str], LocalRouteHandler], method: str, path: str
) -> LocalRouteHandler | None:
    """The route for exactly this path, else one with {variables} in its path (``/_local/mailbox/{n}``)."""
    exact = local_routes.get((method, path))
    if exact is not None:
        return exact
    for (route_method, route_path), handler in local_routes.items():
        if route_method != method or "{" not in route_path:
            continue
        if re.fullmatch(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(route_path)), path):
            return handler
    return None


# ---------------------------------------------------------------- the HTTP server


class Responder(Protocol):
    def handle(self, request: LocalRequest) -> LocalResponse: ...


class LocalHTTPServer(ThreadingHTTPServer):
    """A thread per connection, as ThreadingHTTPServer, sized for bursts and quick to stop."""

    request_queue_size = 256  # the listen backlog; socketserver's 5 reset bursts of new connections
    daemon_threads = True
    block_on_close = False  # stopping never waits on a connection (an idle keep-alive one lasts 60 s)


def http_server(host: str, port: int, responder: Responder) -> LocalHTTPServer:
    """Bound to ``host:port`` (0: a free port), answering every request with ``responder.handle``."""

    class Handler(_RequestHandler):
        pass

    Handler.responder = responder
    return LocalHTTPServer((host, port), Handler)


class _RequestHandler(BaseHTTPRequestHandler):
    responder: Responder
    protocol_version = "HTTP/1.1"
    server_version = "mci-local-stack"
    sys_version = ""
    timeout = 60  # idle keep-alive connections end

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
                response = self.responder.handle(request)
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

    # BaseHTTPRequestHandler calls do_<METHOD>; every method is served the same way.
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

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
