"""Rule 8: the proposed payment of a variable-payment claim."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from mci.domain.errors import RuleViolation, ValidationFailed
from mci.domain.reference import Engagement, PaymentRules, PaymentType


@dataclass(frozen=True, slots=True)
class Quote:
    proposed_payment_usd: Decimal
    hours: int
    hourly_rate_usd: Decimal
    hours_amount_usd: Decimal
    max_payment_usd: Decimal
    opportunity_value_usd: Decimal
    max_opportunity_share: Decimal
    opportunity_cap_usd: Decimal
    limited_by: str


def payment_rules_of(engagement: Engagement) -> PaymentRules:
    if engagement.payment_type is not PaymentType.VARIABLE or engagement.payment_rules is None:
        raise RuleViolation(
            "not_variable_payment",
            f"Engagement {engagement.engagement_id} has a fixed payment; only variable payment is quoted.",
        )
    return engagement.payment_rules


def check_hours(rules: PaymentRules, hours: int | None, field: str = "hours") -> int:
    if hours is None:
        raise ValidationFailed.single(field, "is required for a variable-payment engagement", "missing")
    if not rules.min_hours <= hours <= rules.max_hours:
        raise ValidationFailed.single(
            field, f"must be a whole number from {rules.min_hours} to {rules.max_hours}", "out_of_range"
        )
    return hours


def quote(engagement: Engagement, hours: int | None, opportunity_value_usd: Decimal | None) -> Quote:
    """min(hours * hourly rate, maximum payment, floor(opportunity value * maximum share))."""
    rules = payment_rules_of(engagement)
    whole_hours = check_hours(rules, hours)
    if opportunity_value_usd is None:
        raise RuleViolation(
            "opportunity_value_unknown", "The MSX opportunity has no estimated value, so it cannot be quoted."
        )
    hours_amount = whole_hours * rules.hourly_rate_usd
    opportunity_cap = Decimal(math.floor(opportunity_value_usd * rules.max_opportunity_share))
    caps = {
        "hours": hours_amount,
        "max_payment": rules.max_payment_usd,
        "opportunity_share": opportunity_cap,
    }
    limited_by = min(caps, key=lambda name: caps[name])
    return Quote(
        proposed_payment_usd=caps[limited_by],
        hours=whole_hours,
        hourly_rate_usd=rules.hourly_rate_usd,
        hours_amount_usd=hours_amount,
        max_payment_usd=rules.max_payment_usd,
        opportunity_value_usd=opportunity_value_usd,
        max_opportunity_share=rules.max_opportunity_share,
        opportunity_cap_usd=opportunity_cap,
        limited_by=limited_by,
    )
