"""Call the API through the functions' real handlers with real HTTP API events, and read its answers.

``caller.post("/customers", body)`` / ``caller.get(path, query=...)`` name only what a client sends: the
template routes the request (``local.handler_calls``) to its function, route key and path parameters.
A test that must hand-build its event (bytes that are not UTF-8, a tampered raw query string) still
routes it with ``local.handler_calls.template_route`` and calls ``route_handler``.
"""

from __future__ import annotations

from typing import Any

from local.answers import Answer
from local.events import http_event, jwt_claims
from local.gateway import routed_path
from local.handler_calls import route_handler, template_route

__all__ = ["Answer", "Caller"]


class Caller:
    """One partner user calling the API through the functions' handlers."""

    def __init__(self, partner_id: str | None, roles: list[str], context: Any) -> None:
        self.claims = jwt_claims(partner_id, roles) if partner_id else None
        self.context = context

    def get(self, path: str, **options: Any) -> Answer:
        """``GET path``; ``options`` as for ``request``."""
        return self.request("GET", path, **options)

    def post(self, path: str, body: Any = None, **options: Any) -> Answer:
        """``POST path`` with ``body``; ``options`` as for ``request``."""
        return self.request("POST", path, body, **options)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw_body: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> Answer:
        """``method path`` as API Gateway routes it: the template's function, route key and path parameters."""
        route, path_parameters = template_route(method, path)
        event = http_event(
            method,
            routed_path(path),
            route_key=route.route_key,
            body=body,
            raw_body=raw_body,
            claims=self.claims,
            headers=headers,
            path_parameters=path_parameters or None,
            query=query,
        )
        return Answer.of_result(route_handler(route.route)(event, self.context))
