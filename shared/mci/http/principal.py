"""The caller, from the claims the API Gateway JWT authorizer verified; nothing from the request itself."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mci.domain.errors import Unauthorized
from mci.domain.principal import Principal

ROLE_NAME = r"[A-Za-z0-9_.-]{1,64}"
# The only two shapes the HTTP API authorizer hands a Lambda: a single string claim as it is (one role), and a
# JSON array claim flattened to "[a b]". Anything else (JSON text, commas, nested brackets, lists) is forged.
_ONE_ROLE = re.compile(ROLE_NAME)
_FLATTENED_ROLES = re.compile(rf"\[(?:{ROLE_NAME}(?: {ROLE_NAME})*)?\]")


def parse_roles(raw: object) -> frozenset[str]:
    """Roles as the authorizer hands them: ``role`` or ``[a b]``; any other shape grants no role at all."""
    if not isinstance(raw, str):
        return frozenset()
    if _ONE_ROLE.fullmatch(raw):
        return frozenset({raw})
    if _FLATTENED_ROLES.fullmatch(raw):
        return frozenset(raw[1:-1].split())
    return frozenset()


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
