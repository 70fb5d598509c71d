"""Reference data models (SPEC §2 and §4): what an engagement, location, customer and domain record may be."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from mci.adapters.memory import MemoryReferenceRepository
from mci.domain.errors import DomainError
from mci.domain.identifiers import Identifier, IdentifierType
from mci.domain.reference import (
    CustomerRecord,
    DomainRecord,
    Engagement,
    Location,
    PaymentRules,
    PaymentType,
    ReferenceData,
)
from tests.support.reference import demo_json

RULES = {
    "hourly_rate_usd": 150,
    "min_hours": 10,
    "max_hours": 200,
    "max_payment_usd": 25000,
    "max_opportunity_share": 0.1,
}


def fixed(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "engagement_id": "e-test",
        "name": "Test",
        "payment_type": "fixed",
        "identifier_types": ["domain", "tenant_id", "tpid", "subscription_id"],
        "opens_on": "2026-01-01",
        "closes_on": "2026-12-31",
    }
    data.update(overrides)
    return data


def variable(**overrides: Any) -> dict[str, Any]:
    data = {"payment_type": "variable", "identifier_types": ["msx_opportunity_id"], "payment_rules": RULES}
    return fixed(**{**data, **overrides})


def refusal(model: type[Any], data: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return [e["loc"] for e in raised.value.errors()]


def test_the_demo_data_is_valid() -> None:
    data = ReferenceData.model_validate(demo_json())
    assert (len(data.engagements), len(data.locations), len(data.customers), len(data.domains)) == (4, 4, 7, 4)


def test_engagement_defaults_are_the_programmes_history() -> None:
    engagement = Engagement.model_validate(fixed())
    assert engagement.consent_window_days == 30
    assert engagement.submission_window_days == 90
    assert engagement.max_active_claims_per_customer == 1
    assert engagement.referral.enabled is False
    assert engagement.criteria.segments is None
    assert engagement.payment_rules is None


def test_a_variable_engagement() -> None:
    engagement = Engagement.model_validate(variable())
    assert engagement.payment_type is PaymentType.VARIABLE
    assert engagement.payment_rules == PaymentRules.model_validate(RULES)
    assert engagement.payment_rules.max_opportunity_share == Decimal("0.1")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (fixed(identifier_types=["msx_opportunity_id"]), "fixed payment accepts only"),
        (fixed(identifier_types=["domain", "msx_opportunity_id"]), "fixed payment accepts only"),
        (fixed(payment_rules=RULES), "payment_rules apply to variable payment only"),
        (variable(identifier_types=["domain"]), "variable payment accepts msx_opportunity_id only"),
        (variable(identifier_types=["msx_opportunity_id", "tpid"]), "variable payment accepts msx_opportunity_id only"),
        (variable(payment_rules=None), "variable payment needs payment_rules"),
        (fixed(opens_on="2027-01-01", closes_on="2026-12-31"), "opens_on must not be after closes_on"),
    ],
)
def test_rule_2_identifier_types_and_payment_are_consistent(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Engagement.model_validate(data)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"engagement_id": "E-Upper"}, ("engagement_id",)),
        ({"engagement_id": "-leading"}, ("engagement_id",)),
        ({"engagement_id": "e" * 65}, ("engagement_id",)),
        ({"name": ""}, ("name",)),
        ({"name": "x" * 201}, ("name",)),
        ({"payment_type": "hourly"}, ("payment_type",)),
        ({"identifier_types": []}, ("identifier_types",)),
        ({"identifier_types": ["email"]}, ("identifier_types", 0)),
        ({"consent_window_days": 0}, ("consent_window_days",)),
        ({"submission_window_days": 731}, ("submission_window_days",)),
        ({"max_active_claims_per_customer": 0}, ("max_active_claims_per_customer",)),
        ({"criteria": {"countries": ["es"]}}, ("criteria", "countries", 0)),
        ({"criteria": {"colour": "red"}}, ("criteria", "colour")),
        ({"referral": {"enabled": True, "min_deal_size_usd": -1}}, ("referral", "min_deal_size_usd")),
        ({"opens_on": "someday"}, ("opens_on",)),
        ({"unknown": 1}, ("unknown",)),
    ],
)
def test_engagement_fields_are_validated(overrides: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert refusal(Engagement, fixed(**overrides)) == [loc]


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"min_hours": 0}, ("min_hours",)),
        ({"hourly_rate_usd": 0}, ("hourly_rate_usd",)),
        ({"max_payment_usd": -5}, ("max_payment_usd",)),
        ({"max_opportunity_share": 1.5}, ("max_opportunity_share",)),
        ({"max_opportunity_share": -0.1}, ("max_opportunity_share",)),
        ({"hourly_rate_usd": "12.345"}, ("hourly_rate_usd",)),
        ({"surplus": 1}, ("surplus",)),
    ],
)
def test_payment_rules_are_validated(overrides: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert refusal(PaymentRules, {**RULES, **overrides}) == [loc]


def test_min_hours_may_not_exceed_max_hours() -> None:
    with pytest.raises(ValidationError, match="min_hours must not exceed max_hours"):
        PaymentRules.model_validate({**RULES, "min_hours": 201})
    assert PaymentRules.model_validate({**RULES, "min_hours": 200}).min_hours == 200


def test_engagement_is_open_on_both_ends_inclusive() -> None:
    engagement = Engagement.model_validate(fixed())
    assert engagement.is_open(date(2026, 1, 1))
    assert engagement.is_open(date(2026, 12, 31))
    assert not engagement.is_open(date(2025, 12, 31))
    assert not engagement.is_open(date(2027, 1, 1))


LOCATION = {"location_id": "1234567", "partner_id": "p-contoso", "name": "Madrid", "enrolled_in_mci": True}


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"location_id": "123456"}, ("location_id",)),
        ({"location_id": "12345678"}, ("location_id",)),
        ({"location_id": "123456a"}, ("location_id",)),
        ({"partner_id": "p contoso"}, ("partner_id",)),
        ({"partner_id": ""}, ("partner_id",)),
        ({"eligible_engagements": ["Not An Id"]}, ("eligible_engagements", 0)),
        ({"enrolled_in_mci": "perhaps"}, ("enrolled_in_mci",)),
    ],
)
def test_location_fields_are_validated(overrides: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert refusal(Location, {**LOCATION, **overrides}) == [loc]


def test_location_needs_its_enrolment() -> None:
    data = dict(LOCATION)
    del data["enrolled_in_mci"]
    assert refusal(Location, data) == [("enrolled_in_mci",)]


def test_customer_record_value_is_normalised() -> None:
    record = CustomerRecord.model_validate(
        {
            "identifier_type": "tenant_id",
            "value": " 5F1C2A3B-0000-4000-8000-00000000000A ",
            "name": "Fabrikam",
            "segment": "SMB",
            "country": "ES",
        }
    )
    assert record.value == "5f1c2a3b-0000-4000-8000-00000000000a"
    assert record.identifier == Identifier(IdentifierType.TENANT_ID, "5f1c2a3b-0000-4000-8000-00000000000a")
    assert record.cosell_allowed is False
    assert record.opportunity_value_usd is None


def test_customer_record_with_an_invalid_identifier_is_refused() -> None:
    with pytest.raises((ValidationError, DomainError), match="not a valid tenant_id"):
        CustomerRecord.model_validate(
            {"identifier_type": "tenant_id", "value": "nope", "name": "F", "segment": "SMB", "country": "ES"}
        )


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"country": "es"}, ("country",)),
        ({"country": "ESP"}, ("country",)),
        ({"segment": "S" * 41}, ("segment",)),
        ({"opportunity_value_usd": -1}, ("opportunity_value_usd",)),
        ({"identifier_type": "email"}, ("identifier_type",)),
    ],
)
def test_customer_record_fields_are_validated(overrides: dict[str, Any], loc: tuple[Any, ...]) -> None:
    data = {"identifier_type": "tpid", "value": "123", "name": "F", "segment": "SMB", "country": "ES", **overrides}
    assert loc in refusal(CustomerRecord, data)


def test_domain_record_is_normalised() -> None:
    record = DomainRecord.model_validate(
        {"domain": " Bücher.Example ", "tenant_id": "5F1C2A3B-0000-4000-8000-00000000000A"}
    )
    assert record.domain == "xn--bcher-kva.example"
    assert record.tenant_id == "5f1c2a3b-0000-4000-8000-00000000000a"


@pytest.mark.parametrize(
    "data",
    [
        {"domain": "not a domain", "tenant_id": "5f1c2a3b-0000-4000-8000-000000000001"},
        {"domain": "fabrikam.com", "tenant_id": "fabrikam"},
    ],
)
def test_domain_record_refuses_bad_values(data: dict[str, str]) -> None:
    with pytest.raises((ValidationError, DomainError)):
        DomainRecord.model_validate(data)


def test_reference_data_lists_are_optional_and_bounded() -> None:
    assert ReferenceData.model_validate({}) == ReferenceData()
    too_many = [{"domain": f"d{i}.com", "tenant_id": "5f1c2a3b-0000-4000-8000-000000000001"} for i in range(5001)]
    assert refusal(ReferenceData, {"domains": too_many}) == [("domains",)]
    assert refusal(ReferenceData, {"partners": []}) == [("partners",)]


def test_records_are_upserted_by_id() -> None:
    repository = MemoryReferenceRepository(ReferenceData.model_validate(demo_json()))
    renamed = fixed(engagement_id="e-azure-migrate", name="Renamed", identifier_types=["domain"])
    counts = repository.save(ReferenceData.model_validate({"engagements": [renamed]}))
    assert counts == {"engagements": 1, "locations": 0, "customers": 0, "domains": 0}
    assert len(repository.list_engagements()) == 4
    assert repository.get_engagements(["e-azure-migrate"])["e-azure-migrate"].name == "Renamed"


def test_models_are_immutable() -> None:
    engagement = Engagement.model_validate(fixed())
    with pytest.raises(ValidationError):
        engagement.name = "changed"  # type: ignore[misc]
