"""The caller, from the claims the API Gateway JWT authorizer verified; nothing from the request itself."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mci.domain.errors import Unauthorized
from mci.domain.principal import Principal


def parse_roles(raw: object) -> frozenset[str]:
    """Roles as the authorizer hands them: ``[a b]`` (HTTP API flattens arrays), a JSON list, or a list."""
    if isinstance(raw, list | tuple):
        return frozenset(str(r) for r in raw)
    if not isinstance(raw, str):
        return frozenset()
    text = raw.strip()
    if text.startswith("[") and '"' in text:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return frozenset(str(r) for r in parsed)
    return frozenset(part for part in text.strip("[]").replace(",", " ").split() if part)


def principal_from_event(event: Mapping[str, Any]) -> Principal:
    """401 when the verified claims are missing: the route was reached without the authorizer."""
    claims = (
        (event.get("requestContext") or {}).get("authorizer", {}).get("jwt", {}).get("claims")
        if isinstance(event.get("requestContext"), dict)
        else None
    )
    if not isinstance(claims, dict) or not claims.get("partner_id"):
        raise Unauthorized()
    return Principal(
        partner_id=str(claims["partner_id"]),
        roles=parse_roles(claims.get("roles")),
        user_id=str(claims.get("sub") or "unknown"),
        request_id=str(event["requestContext"].get("requestId") or "") or None,
    )
