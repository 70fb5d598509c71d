"""Every route's function reads its path parameters as API Gateway hands them on: decoded once, the same way.

A client percent-encodes a parameter (``tenant_id%3A...``); API Gateway decodes the path before routing and hands
``rawPath`` and ``pathParameters`` on decoded (tests/unit/test_local_gateway_paths.py). The functions' resolver
reads the parameters from ``rawPath``; no route decodes them again, so a literal ``%25`` stays ``%25``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

from local.cloudformation import routes
from tests.support.api import Caller
from tests.support.reference import CONTOSO

PARAMETERISED = sorted(
    {(route.method, route.path) for route in routes() if "{" in route.path and "+}" not in route.path}
)


@pytest.fixture
def route_arguments(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The keyword arguments each route function is called with (Powertools reads them from the path)."""
    seen: list[dict[str, str]] = []
    call_route = ApiGatewayResolver._call_route

    def recording(self: ApiGatewayResolver, route: Any, arguments: dict[str, str]) -> Any:
        seen.append(dict(arguments))
        return call_route(self, route, arguments)

    monkeypatch.setattr(ApiGatewayResolver, "_call_route", recording)
    return seen


@pytest.mark.parametrize(("method", "path"), PARAMETERISED)
def test_an_encoded_path_parameter_reaches_every_route_decoded_once(
    seeded: Any, lambda_context: Any, route_arguments: list[dict[str, str]], method: str, path: str
) -> None:
    names = re.findall(r"\{([A-Za-z0-9_]+)\}", path)
    concrete = re.sub(r"\{[A-Za-z0-9_]+\}", "tenant_id%3Ax%2525y", path)
    caller = Caller(CONTOSO, ["incentives_user"], lambda_context)
    answer = caller.request(method, concrete, {} if method == "POST" else None)
    assert answer.status < 500, answer.text
    assert route_arguments == [dict.fromkeys(names, "tenant_id:x%25y")]
