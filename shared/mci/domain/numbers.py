"""Numbers as clients send them (rule 27): a JSON number, never text or a boolean."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Strict
from pydantic_core import PydanticCustomError


def json_number(value: object) -> object:
    """Refuse text and booleans before pydantic's lax number parsing would accept ``"500"`` or ``true``.

    Lax otherwise on purpose: numbers read back from DynamoDB arrive as ``Decimal``."""
    if isinstance(value, str | bytes | bool):
        raise PydanticCustomError("number_type", "Input should be a JSON number, not {kind}", {"kind": _kind(value)})
    return value


def _kind(value: object) -> str:
    return "a boolean" if isinstance(value, bool) else "text"


# A whole number in a strict request model (Strict(False): the check above is the strict one)
WholeNumber = Annotated[int, Strict(False), BeforeValidator(json_number)]
