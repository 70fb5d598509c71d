"""Amounts in USD: exact decimals inside, plain JSON numbers outside."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer


def as_json_number(amount: Decimal) -> int | float:
    """Whole amounts as integers, the rest as floats (cents survive the round trip)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


Usd = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("1000000000"), max_digits=14, decimal_places=2),
    PlainSerializer(as_json_number, when_used="json"),
]
PositiveUsd = Annotated[
    Decimal,
    Field(gt=0, le=Decimal("1000000000"), max_digits=14, decimal_places=2),
    PlainSerializer(as_json_number, when_used="json"),
]
Share = Annotated[
    Decimal,
    Field(ge=0, le=1, max_digits=6, decimal_places=4),
    PlainSerializer(as_json_number, when_used="json"),
]
