"""API Gateway HTTP API (payload 2.0) events, built from the samples in events/ (the one source of them)."""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/<name>.json."""
    data: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    return data


def http_event(
    method: str,
    path: str,
    *,
    route_key: str | None = None,
    body: Any = None,
    raw_body: str | None = None,
    claims: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An event as API Gateway hands it to Lambda: claims already verified, array claims flattened."""
    event = copy.deepcopy(load_event("http_api_base"))
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    event["routeKey"] = route_key or f"{method} {path}"
    event["rawPath"] = path
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    event["headers"] = {k.lower(): v for k, v in {"content-type": "application/json", **(headers or {})}.items()}
    if query:
        event["queryStringParameters"] = dict(query)
    else:
        event.pop("queryStringParameters", None)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    else:
        event.pop("pathParameters", None)
    context = event["requestContext"]
    context["http"]["method"] = method
    context["http"]["path"] = path
    context["http"]["sourceIp"] = source_ip
    context["routeKey"] = event["routeKey"]
    context["requestId"] = str(uuid.uuid4())
    context["timeEpoch"] = int(time.time() * 1000)
    if claims is None:
        context.pop("authorizer", None)
    else:
        context["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": None}}
    if text is None:
        event.pop("body", None)
        event["isBase64Encoded"] = False
    else:
        event["body"] = base64.b64encode(text.encode()).decode()
        event["isBase64Encoded"] = True
    return event


def jwt_claims(partner_id: str, roles: list[str], subject: str = "user-1") -> dict[str, str]:
    """Claims as the HTTP API JWT authorizer passes them: arrays flattened to '[a b]'."""
    return {"sub": subject, "partner_id": partner_id, "roles": "[" + " ".join(roles) + "]"}
