"""RFC 9457 problem details: the one place where errors become responses."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from mci.domain.errors import DependencyUnavailable, DomainError

PROBLEM_TYPE_BASE = "https://mci-customers.example/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response[str]:
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    headers = {"Cache-Control": "no-store"}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return Response(
        status_code=status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(body, default=str),
        headers=headers,
    )


def from_domain_error(error: DomainError) -> Response[str]:
    extra = dict(error.extra)
    if isinstance(error, DependencyUnavailable):
        extra["retry_after"] = error.retry_after_seconds
    return problem(error.status, error.code, error.title, error.detail, **extra)


def validation_problem(errors: list[dict[str, str]]) -> Response[str]:
    names = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return problem(422, "validation_error", "Invalid request", f"Invalid field(s): {names}", errors=errors)
