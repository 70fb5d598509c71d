"""The real handlers called in process, each request routed to its function as the HTTP API routes it.

``template_route`` matches a method and a concrete path against the routes of template.yaml with the
local stack's own matching (``local.gateway.compile_route`` / ``find_route``): the function, the route key
and the path parameters all come from the template, so a caller names only what a client sends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from local.cloudformation import Route, routes
from local.gateway import ApiRoute, compile_route, find_route
from local.lambda_runtime import LocalFunction

Handler = Callable[[dict[str, Any], Any], Any]


class NoSuchRoute(LookupError):
    """No route of template.yaml serves this method and path (API Gateway would answer 404)."""


@functools.cache
def _api_routes() -> tuple[ApiRoute, ...]:
    return tuple(sorted((compile_route(route) for route in routes()), key=lambda r: r.specificity))


def template_route(method: str, path: str) -> tuple[ApiRoute, dict[str, str]]:
    """The template route API Gateway picks for ``method path``, and the path parameters it reads."""
    found = find_route(list(_api_routes()), method.upper(), path)
    if found is None:
        raise NoSuchRoute(f"no route of template.yaml serves {method} {path}")
    return found


def route_handler(route: Route) -> Handler:
    """The handler of the function that serves ``route``."""
    return LocalFunction(route.function, route.code_uri, route.handler, memory=128, timeout=3).load()
