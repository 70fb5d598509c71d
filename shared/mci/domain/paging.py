"""Paging helpers shared by the partner's lists: signed cursors (rule 31) and days left to a deadline."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from mci.domain.errors import ValidationFailed

MIN_CURSOR_KEY_BYTES = 16


def _signature(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_cursor(key: bytes, values: list[str]) -> str:
    """An opaque cursor holding ``values``, signed with the service's key (HMAC-SHA256)."""
    payload = base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
    return f"{payload}.{_signature(key, payload)}"


def signed_values(text: str, key: bytes) -> list[Any]:
    """Rule 31: the values of a cursor this service signed; anything else is a 422 on ``cursor``."""
    payload, _, signature = text.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _signature(key, payload).encode()):
        raise ValidationFailed.single("cursor", "is not a cursor this service issued")
    try:
        padded = payload + "=" * (-len(payload) % 4)
        values: Any = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed.single("cursor", "is not a cursor this service issued") from None
    if not isinstance(values, list):
        raise ValidationFailed.single("cursor", "is not a cursor this service issued")
    return values


def days_left(deadline: datetime | None, now: datetime) -> int | None:
    if deadline is None:
        return None
    return max(0, (deadline - now).days)
