"""API Gateway's part of a request (HTTP API, payload 2.0): match a template route, run the JWT authorizer,
build the event the function receives, and turn what it returns into the HTTP response."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from local.cloudformation import Route
from local.events import http_event
from local.server import LocalRequest, LocalResponse
from local.tokens import InvalidToken, TokenIssuer, authorizer_claims, has_any_scope

_TEXT_TYPES = re.compile(
    r"^(text/|application/(json|x-www-form-urlencoded|xml|javascript)|application/[\w.+-]+\+(json|xml))"
)
_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})


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
        """The path parameters of ``path`` (already decoded, ``routed_path``) when this route serves it."""
        if self.route.method not in (method, "ANY"):
            return None
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return found.groupdict()


def routed_path(raw_path: str) -> str:
    """The path as HTTP API routes it and hands it on, percent-decoded once.

    API Gateway decodes URL-encoded request parameters before passing them to the integration (developer guide,
    "Working with routes for HTTP APIs"); captured events show ``rawPath`` decoded too, and a route matched on
    the decoded path: ``%2F`` in a segment is a ``/`` that splits it. The function gets ``rawPath``,
    ``requestContext.http.path`` and ``pathParameters`` decoded, and decodes nothing again (docs/local-stack.md).
    """
    return unquote(raw_path)


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
    """The route API Gateway picks for ``path`` as the client sent it (percent-encoded), and its parameters."""
    decoded = routed_path(path)
    for api_route in api_routes:
        parameters = api_route.match(method, decoded)
        if parameters is not None:
            return api_route, parameters
    return None


# ---------------------------------------------------------------- the JWT authorizer


def authorize(
    tokens: TokenIssuer, request: LocalRequest, scopes: tuple[str, ...] = ()
) -> dict[str, str] | LocalResponse:
    """The JWT authorizer: verified claims as the Lambda sees them, API Gateway's 401 for a token it
    refuses, or its 403 for a valid token without one of the route's ``scopes``."""
    header = request.headers.get("authorization", "").strip()
    if not header:
        return LocalResponse.message(401, "Unauthorized")
    token = header[7:].strip() if header[:7].lower() == "bearer " else header
    try:
        claims = tokens.verify(token)
    except InvalidToken as error:
        challenge = f'Bearer error="invalid_token" error_description="{error}"'.replace("\n", " ")
        return LocalResponse.message(401, "Unauthorized", [("WWW-Authenticate", challenge)])
    if not has_any_scope(claims, scopes):
        return LocalResponse.message(403, "Forbidden")
    return authorizer_claims(claims)


# ---------------------------------------------------------------- events and results


def lambda_event(
    request: LocalRequest,
    api_route: ApiRoute,
    path_parameters: dict[str, str],
    claims: dict[str, str] | None,
    host: str,
) -> dict[str, Any]:
    """A payload 2.0 event, from the shared sample, as API Gateway would send for this request."""
    event = http_event(
        request.method,
        routed_path(request.path),
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


def http_response(result: Any, request_id: str) -> LocalResponse:
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
