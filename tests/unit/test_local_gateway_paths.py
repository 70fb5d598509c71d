"""Percent-encoded paths through the local gateway, as API Gateway (HTTP API, payload 2.0) hands them on.

API Gateway decodes URL-encoded request parameters before it passes them to the integration (its developer
guide, "Working with routes for HTTP APIs"); captures of live HTTP APIs show ``rawPath`` decoded as well, and a
decoded ``/`` splitting the segment, so ``%2F`` in a parameter matches no route. The function then reads every
path parameter decoded, once: none of the service's routes decodes again (docs/local-stack.md).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.cloudformation import routes
from local.gateway import compile_route, find_route, lambda_event
from local.server import LocalRequest

PARAMETERISED = sorted(
    {(route.method, route.path) for route in routes() if "{" in route.path and "+}" not in route.path}
)


def _concrete(path: str, value: str) -> str:
    return re.sub(r"\{[A-Za-z0-9_]+\}", value, path)


def _event(method: str, raw_path: str) -> dict[str, Any]:
    api_routes = sorted((compile_route(route) for route in routes()), key=lambda r: r.specificity)
    found = find_route(api_routes, method, raw_path)
    assert found is not None, raw_path
    api_route, parameters = found
    request = LocalRequest(method=method, path=raw_path, query="", headers={}, body=b"")
    return lambda_event(request, api_route, parameters, None, "127.0.0.1")


def test_every_route_with_a_path_parameter_is_checked() -> None:
    assert ("POST", "/known-customers/{customer_id}/claims") in PARAMETERISED
    assert len(PARAMETERISED) >= 9


@pytest.mark.parametrize(("method", "path"), PARAMETERISED)
def test_an_encoded_parameter_reaches_the_event_decoded_once(method: str, path: str) -> None:
    event = _event(method, _concrete(path, "tenant_id%3Ax%2525y"))
    names = re.findall(r"\{([A-Za-z0-9_]+)\}", path)
    assert event["pathParameters"] == dict.fromkeys(names, "tenant_id:x%25y")
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == _concrete(path, "tenant_id:x%25y")
    assert event["routeKey"] == f"{method} {path}"


@pytest.mark.parametrize(("method", "path"), PARAMETERISED)
def test_an_encoded_slash_splits_the_segment_and_matches_no_route(method: str, path: str) -> None:
    api_routes = sorted((compile_route(route) for route in routes()), key=lambda r: r.specificity)
    found = find_route(api_routes, method, _concrete(path, "a%2Fb"))
    assert found is None or found[0].route.path != path


def test_a_decoded_question_mark_stays_in_the_parameter() -> None:
    """Captures of live HTTP APIs show ``rawPath`` cut at a decoded ``?`` (hotsock/voker#8); AWS's documentation does
    not say so, so the local gateway keeps it, as docs/local-stack.md says. No id the service hands out holds one."""
    event = _event("GET", "/claims/a%3Fb")
    assert event["pathParameters"] == {"claim_id": "a?b"}
    assert event["rawPath"] == "/claims/a?b"
    assert event["rawQueryString"] == ""
