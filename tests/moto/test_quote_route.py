"""POST /payment-quotes through the real handler on moto (rule 8)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mci import wiring
from mci.domain.reference import ReferenceData
from tests.support.api import Answer, Caller
from tests.support.reference import AI, CONTOSO, CONTOSO_MADRID, MIGRATE, NORTHWIND_DUBLIN

BIG_DEAL = "7-BIGDEAL001"  # 1,000,000 USD: the maximum payment wins
ODD_VALUE = "7-ODDVALUE01"  # 123,456.78 USD: floor(12,345.678) = 12,345
NO_VALUE = "7-NOVALUE001"


@pytest.fixture
def contoso(seeded: Any, lambda_context: Any) -> Caller:
    opportunities = [(BIG_DEAL, 1_000_000), (ODD_VALUE, Decimal("123456.78")), (NO_VALUE, None)]
    records = [
        {"identifier_type": "msx_opportunity_id", "value": value, "name": value, "segment": "ENT", "country": "US"}
        | {"opportunity_value_usd": amount}
        for value, amount in opportunities
    ]
    wiring.services().reference.save(ReferenceData.model_validate({"customers": records}))
    return Caller(CONTOSO, ["incentives_user"], lambda_context)


def quote(caller: Caller, **overrides: Any) -> Answer:
    body = {"engagement_id": AI, "location_id": CONTOSO_MADRID, "msx_opportunity_id": "7-ABC123XYZ", "hours": 10}
    return caller.post("/payment-quotes", {**body, **overrides})


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.body["code"] == code


@pytest.mark.parametrize(
    ("opportunity", "hours", "payment", "limited_by"),
    [
        ("7-ABC123XYZ", 10, 1500, "hours"),  # 1500 < 18000 < 25000
        ("7-ABC123XYZ", 200, 18000, "opportunity_share"),  # 30000, 25000, 18000
        (BIG_DEAL, 200, 25000, "max_payment"),  # 30000, 25000, 100000
        (ODD_VALUE, 100, 12345, "opportunity_share"),  # 15000, 25000, floor(12345.678)
        ("7-SMALL0001", 10, 500, "opportunity_share"),  # 1500, 25000, 500
    ],
)
def test_the_smallest_cap_sets_the_payment(
    contoso: Caller, opportunity: str, hours: int, payment: int, limited_by: str
) -> None:
    answer = quote(contoso, msx_opportunity_id=opportunity, hours=hours)
    assert answer.status == 200, answer.body
    assert answer.body["proposed_payment_usd"] == payment
    assert answer.body["breakdown"]["limited_by"] == limited_by
    assert answer.body["breakdown"]["hours"] == hours


def test_the_breakdown_shows_every_term(contoso: Caller) -> None:
    answer = quote(contoso, msx_opportunity_id=ODD_VALUE, hours=100)
    breakdown = answer.body["breakdown"]
    assert {k: v for k, v in breakdown.items() if k != "max_opportunity_share"} == {
        "hours": 100,
        "hourly_rate_usd": 150,
        "hours_amount_usd": 15000,
        "max_payment_usd": 25000,
        "opportunity_value_usd": 123456.78,
        "opportunity_cap_usd": 12345,
        "limited_by": "opportunity_share",
    }


def test_the_share_is_a_json_number(contoso: Caller) -> None:
    assert quote(contoso).body["breakdown"]["max_opportunity_share"] == 0.1


@pytest.mark.parametrize("hours", [10, 200])
def test_hour_bounds_are_inclusive(contoso: Caller, hours: int) -> None:
    assert quote(contoso, hours=hours).status == 200


@pytest.mark.parametrize("hours", [9, 201])
def test_hours_outside_the_engagements_bounds(contoso: Caller, hours: int) -> None:
    answer = quote(contoso, hours=hours)
    assert_problem(answer, 422, "validation_error")
    assert answer.body["errors"] == [
        {"field": "hours", "message": "must be a whole number from 10 to 200", "code": "out_of_range"}
    ]


@pytest.mark.parametrize("hours", [0, -1, 10_001])
def test_hours_outside_any_engagements_bounds(contoso: Caller, hours: int) -> None:
    answer = quote(contoso, hours=hours)
    assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["hours"]


@pytest.mark.parametrize("hours", [1.5, "10", 10.5, True, None, [10], {"h": 10}])
def test_hours_of_the_wrong_type_are_refused_naming_hours(contoso: Caller, hours: Any) -> None:
    answer = quote(contoso, hours=hours)
    assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["hours"]


def test_hours_are_required(contoso: Caller) -> None:
    body = {"engagement_id": AI, "location_id": CONTOSO_MADRID, "msx_opportunity_id": "7-ABC123XYZ"}
    answer = contoso.post("/payment-quotes", body)
    assert_problem(answer, 422, "validation_error")
    assert [(e["field"], e["code"]) for e in answer.body["errors"]] == [("hours", "missing")]


def test_a_fixed_engagement_is_not_quoted(contoso: Caller) -> None:
    assert_problem(quote(contoso, engagement_id=MIGRATE), 422, "not_variable_payment")


def test_an_unknown_opportunity(contoso: Caller) -> None:
    assert_problem(quote(contoso, msx_opportunity_id="7-NOTKNOWN1"), 422, "customer_not_found")


def test_an_opportunity_without_a_value(contoso: Caller) -> None:
    assert_problem(quote(contoso, msx_opportunity_id=NO_VALUE), 422, "opportunity_value_unknown")


def test_an_unknown_engagement_is_named(contoso: Caller) -> None:
    answer = quote(contoso, engagement_id="e-unknown")
    assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["engagement_id"]


def test_another_partners_location_is_answered_like_an_unknown_one(contoso: Caller) -> None:
    theirs, unknown = quote(contoso, location_id=NORTHWIND_DUBLIN), quote(contoso, location_id="9999999")
    assert_problem(theirs, 422, "validation_error")
    assert [e["field"] for e in theirs.body["errors"]] == ["location_id"]
    assert theirs.body == unknown.body


def test_an_invalid_opportunity_id_is_refused(contoso: Caller) -> None:
    answer = quote(contoso, msx_opportunity_id="8-ABC123")
    assert_problem(answer, 422, "validation_error")
    assert answer.body["errors"][0]["field"].startswith("msx_opportunity_id")


def test_a_quote_writes_nothing(contoso: Caller, seeded: Any) -> None:
    def count() -> int:
        return sum(p["Count"] for p in seeded.get_paginator("scan").paginate(TableName="ClaimsTable"))

    before = count()
    assert quote(contoso).status == 200
    assert count() == before


@pytest.mark.parametrize("roles", [["referral_admin"], ["mci_operations"]])
def test_a_claim_role_is_required(seeded: Any, lambda_context: Any, roles: list[str]) -> None:
    assert_problem(quote(Caller(CONTOSO, roles, lambda_context)), 403, "forbidden")


def test_no_token_is_401(seeded: Any, lambda_context: Any) -> None:
    assert_problem(quote(Caller(None, [], lambda_context)), 401, "unauthorized")
