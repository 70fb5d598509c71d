"""Amounts in USD: exact decimals inside, plain JSON numbers outside."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer, Strict, WithJsonSchema

from mci.domain.numbers import json_number


def as_json_number(amount: Decimal) -> int | float:
    """Whole amounts as integers, the rest as floats (cents survive the round trip)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


# Money is a JSON number on the wire, never text (rule 27), and the OpenAPI document says so.
Usd = Annotated[
    Decimal,
    Strict(False),
    BeforeValidator(json_number),
    Field(ge=0, le=Decimal("1000000000"), max_digits=14, decimal_places=2),
    PlainSerializer(as_json_number, when_used="json"),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1_000_000_000}),
]
PositiveUsd = Annotated[
    Decimal,
    Strict(False),
    BeforeValidator(json_number),
    Field(gt=0, le=Decimal("1000000000"), max_digits=14, decimal_places=2),
    PlainSerializer(as_json_number, when_used="json"),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000_000}),
]
Share = Annotated[
    Decimal,
    Strict(False),
    BeforeValidator(json_number),
    Field(ge=0, le=1, max_digits=6, decimal_places=4),
    PlainSerializer(as_json_number, when_used="json"),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1}),
]
