"""Call a function's real handler with a real HTTP API event, and read its answer."""

from __future__ import annotations

import base64
import importlib
import json
from dataclasses import dataclass
from typing import Any

from local.events import http_event, jwt_claims


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    raw: dict[str, Any]

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class Caller:
    """One partner user calling the API through the functions' handlers."""

    def __init__(self, partner_id: str | None, roles: list[str], context: Any) -> None:
        self.claims = jwt_claims(partner_id, roles) if partner_id else None
        self.context = context

    def call(
        self,
        function: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw_body: str | None = None,
        route_key: str | None = None,
        headers: dict[str, str] | None = None,
        path_parameters: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> Answer:
        module = importlib.import_module(f"functions.{function}.app")
        event = http_event(
            method,
            path,
            route_key=route_key,
            body=body,
            raw_body=raw_body,
            claims=self.claims,
            headers=headers,
            path_parameters=path_parameters,
            query=query,
        )
        raw = module.lambda_handler(event, self.context)
        text = raw.get("body") or ""
        if raw.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        headers_out = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        parsed: Any = json.loads(text) if text and "json" in headers_out.get("content-type", "") else text
        return Answer(status=raw["statusCode"], headers=headers_out, body=parsed, raw=raw)
