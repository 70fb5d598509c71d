"""Rule 8: the proposed payment of a variable-payment claim, and the hours it is priced on."""

from __future__ import annotations

import dataclasses
import itertools
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from mci.adapters.memory import MemoryClaimRepository, MemoryReferenceRepository
from mci.domain import nomination, pricing
from mci.domain.clock import FixedClock
from mci.domain.commands import AddCustomer, PaymentQuoteRequest
from mci.domain.errors import RuleViolation, ValidationFailed
from mci.domain.nomination import Nominations
from mci.domain.ports import ConcurrentChange, NewClaims
from mci.domain.pricing import Quote, check_hours, payment_rules_of, quote
from mci.domain.principal import Principal
from mci.domain.reference import Engagement
from tests.support.reference import AI, CONTOSO, CONTOSO_MADRID, MIGRATE, NOW, SECURITY, add_customer_body, demo_data


def variable(**rules: Any) -> Engagement:
    payment_rules = {
        "hourly_rate_usd": 150,
        "min_hours": 10,
        "max_hours": 200,
        "max_payment_usd": 25000,
        "max_opportunity_share": Decimal("0.1"),
        **rules,
    }
    return Engagement.model_validate(
        {
            "engagement_id": "e-variable",
            "name": "Variable",
            "payment_type": "variable",
            "identifier_types": ["msx_opportunity_id"],
            "opens_on": "2026-01-01",
            "closes_on": "2027-12-31",
            "payment_rules": payment_rules,
        }
    )


def test_hours_cap_wins() -> None:
    result = quote(variable(), 10, Decimal(180000))
    assert result.proposed_payment_usd == Decimal(1500)
    assert result.limited_by == "hours"
    assert result.hours_amount_usd == Decimal(1500)
    assert result.opportunity_cap_usd == Decimal(18000)
    assert result.max_payment_usd == Decimal(25000)


def test_maximum_payment_wins() -> None:
    result = quote(variable(), 200, Decimal(1_000_000))
    assert result.hours_amount_usd == Decimal(30000)
    assert result.opportunity_cap_usd == Decimal(100000)
    assert result.proposed_payment_usd == Decimal(25000)
    assert result.limited_by == "max_payment"


def test_opportunity_share_wins() -> None:
    result = quote(variable(), 100, Decimal(5000))
    assert result.hours_amount_usd == Decimal(15000)
    assert result.proposed_payment_usd == Decimal(500)
    assert result.limited_by == "opportunity_share"


@pytest.mark.parametrize(
    ("value", "share", "cap"),
    [
        ("12345.67", "0.1", 1234),  # 1234.567 -> 1234
        ("1000", "0.0333", 33),  # 33.3 -> 33
        ("19999.99", "0.5", 9999),  # 9999.995 -> 9999, never rounded up
        ("999", "0.001", 0),
    ],
)
def test_opportunity_share_is_floored_to_whole_dollars(value: str, share: str, cap: int) -> None:
    result = quote(variable(max_opportunity_share=Decimal(share)), 200, Decimal(value))
    assert result.opportunity_cap_usd == Decimal(cap)
    assert result.proposed_payment_usd == Decimal(cap)
    assert result.limited_by == "opportunity_share"


def test_cents_of_the_hourly_rate_are_kept() -> None:
    result = quote(variable(hourly_rate_usd=Decimal("99.99")), 11, Decimal(1_000_000))
    assert result.proposed_payment_usd == Decimal("1099.89")


@pytest.mark.parametrize("hours", [10, 11, 199, 200])
def test_hours_within_bounds_are_accepted(hours: int) -> None:
    assert quote(variable(), hours, Decimal(1_000_000)).hours == hours


@pytest.mark.parametrize("hours", [0, 9, 201, 10_000, -5])
def test_hours_outside_bounds_are_refused_naming_hours(hours: int) -> None:
    with pytest.raises(ValidationFailed) as raised:
        quote(variable(), hours, Decimal(1_000_000))
    assert raised.value.status == 422
    assert [(e.field, e.code) for e in raised.value.errors] == [("hours", "out_of_range")]
    assert raised.value.errors[0].message == "must be a whole number from 10 to 200"


def test_missing_hours_are_refused() -> None:
    with pytest.raises(ValidationFailed) as raised:
        check_hours(payment_rules_of(variable()), None)
    assert [(e.field, e.code) for e in raised.value.errors] == [("hours", "missing")]


def test_single_allowed_hour() -> None:
    engagement = variable(min_hours=5, max_hours=5)
    assert quote(engagement, 5, Decimal(1_000_000)).proposed_payment_usd == Decimal(750)
    with pytest.raises(ValidationFailed):
        quote(engagement, 6, Decimal(1_000_000))


def test_fixed_engagements_are_not_quoted() -> None:
    fixed = demo_data().engagements[0]
    with pytest.raises(RuleViolation) as raised:
        payment_rules_of(fixed)
    assert raised.value.code == "not_variable_payment"
    with pytest.raises(RuleViolation):
        quote(fixed, 10, Decimal(1000))


def test_an_opportunity_without_a_value_is_not_quoted() -> None:
    with pytest.raises(RuleViolation) as raised:
        quote(variable(), 10, None)
    assert raised.value.code == "opportunity_value_unknown"


QUOTE = {"engagement_id": AI, "location_id": CONTOSO_MADRID, "msx_opportunity_id": "7-ABC123XYZ"}


@pytest.mark.parametrize("hours", [1.5, "10", 10.0, True, None, [10]])
def test_hours_must_be_a_json_integer_in_a_quote(hours: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        PaymentQuoteRequest.model_validate({**QUOTE, "hours": hours})
    assert [e["loc"] for e in raised.value.errors()] == [("hours",)]


@pytest.mark.parametrize("hours", [1.5, "10", 10.0, True])
def test_hours_must_be_a_json_integer_when_adding(hours: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        AddCustomer.model_validate(add_customer_body(hours=hours))
    assert [e["loc"] for e in raised.value.errors()] == [("hours",)]


# --- rule 8 in the add-customer use case ---------------------------------------------------------------


@pytest.fixture
def nominations() -> Nominations:
    ids = (f"claim-{n}" for n in itertools.count(1))
    return Nominations(
        reference=MemoryReferenceRepository(demo_data()),
        claims=MemoryClaimRepository(),
        clock=FixedClock(NOW),
        new_id=lambda: next(ids),
        sleep=lambda _: None,
    )


CONTOSO_USER = Principal(CONTOSO, frozenset({"incentives_user"}))
OPPORTUNITY = {"type": "msx_opportunity_id", "value": "7-ABC123XYZ"}


def add(nominations: Nominations, **overrides: Any) -> list[Any]:
    return nominations.add_customer(CONTOSO_USER, AddCustomer.model_validate(add_customer_body(**overrides)))


def test_a_variable_claim_keeps_its_hours_and_payment(nominations: Nominations) -> None:
    [claim] = add(nominations, identifier=OPPORTUNITY, engagement_ids=[AI], hours=100)
    assert claim.hours == 100
    assert claim.proposed_payment_usd == Decimal(15000)  # min(15000, 25000, floor(180000 * 0.1))


def test_variable_payment_needs_exactly_one_engagement(nominations: Nominations) -> None:
    with pytest.raises(ValidationFailed) as raised:
        add(nominations, identifier=OPPORTUNITY, engagement_ids=[AI, MIGRATE], hours=100)
    assert [(e.field, e.code) for e in raised.value.errors] == [("engagement_ids", "variable_payment_alone")]


def test_variable_payment_needs_hours(nominations: Nominations) -> None:
    with pytest.raises(ValidationFailed) as raised:
        add(nominations, identifier=OPPORTUNITY, engagement_ids=[AI])
    assert [(e.field, e.code) for e in raised.value.errors] == [("hours", "missing")]


@pytest.mark.parametrize("hours", [9, 201])
def test_variable_claim_hours_out_of_range_are_refused(nominations: Nominations, hours: int) -> None:
    with pytest.raises(ValidationFailed) as raised:
        add(nominations, identifier=OPPORTUNITY, engagement_ids=[AI], hours=hours)
    assert [(e.field, e.code) for e in raised.value.errors] == [("hours", "out_of_range")]


@pytest.mark.parametrize("engagement_ids", [[MIGRATE], [MIGRATE, SECURITY]])
def test_hours_are_refused_for_fixed_payment(nominations: Nominations, engagement_ids: list[str]) -> None:
    with pytest.raises(ValidationFailed) as raised:
        add(nominations, engagement_ids=engagement_ids, hours=10)
    assert [(e.field, e.code) for e in raised.value.errors] == [("hours", "not_allowed")]


def test_fixed_claims_have_no_hours_or_payment(nominations: Nominations) -> None:
    [claim] = add(nominations)
    assert claim.hours is None
    assert claim.proposed_payment_usd is None


def test_quote_use_case_prices_a_known_opportunity(nominations: Nominations) -> None:
    result = nominations.quote(CONTOSO_USER, PaymentQuoteRequest.model_validate({**QUOTE, "hours": 200}))
    assert (result.proposed_payment_usd, result.limited_by) == (Decimal(18000), "opportunity_share")


class ConflictingTwice(MemoryClaimRepository):
    """Another writer commits first twice: the request re-reads its limits and builds its claims again."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 2

    def create(self, new: NewClaims) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise ConcurrentChange("another writer committed first")
        super().create(new)


def test_a_request_is_quoted_once_and_every_try_builds_its_claims_from_one_frozen_draft(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quoted: list[tuple[Any, ...]] = []
    drafts: list[nomination.ClaimDraft] = []

    def counted_quote(*args: Any) -> Quote:
        quoted.append(args)
        return pricing.quote(*args)

    def claim(draft: nomination.ClaimDraft, *args: Any, **kwargs: Any) -> Any:
        drafts.append(draft)
        return real_claim(draft, *args, **kwargs)

    real_claim = nomination.ClaimDraft.claim
    monkeypatch.setattr(nomination, "quote", counted_quote)
    monkeypatch.setattr(nomination.ClaimDraft, "claim", claim)
    claims = ConflictingTwice()
    nominations = Nominations(
        reference=MemoryReferenceRepository(demo_data()), claims=claims, clock=FixedClock(NOW), sleep=lambda _: None
    )
    [created] = nominations.add_customer(
        CONTOSO_USER,
        AddCustomer.model_validate(add_customer_body(identifier=OPPORTUNITY, engagement_ids=[AI], hours=100)),
    )
    assert created.proposed_payment_usd == Decimal(15000)
    assert len(quoted) == 1  # three tries, one quote
    assert len(drafts) == 3
    assert len({id(d) for d in drafts}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        drafts[0].hours = 1  # type: ignore[misc]
