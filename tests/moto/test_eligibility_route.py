"""POST /eligibility-checks through the real handler on moto (rules 1-6)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Answer, Caller
from tests.support.reference import (
    AI,
    CONTOSO,
    CONTOSO_MADRID,
    CONTOSO_SEATTLE,
    FABRIKAM_TENANT,
    LEGACY,
    MIGRATE,
    NORTHWIND,
    NORTHWIND_DUBLIN,
    SECURITY,
    add_customer_body,
)


@pytest.fixture
def contoso(seeded: Any, lambda_context: Any) -> Caller:
    return Caller(CONTOSO, ["incentives_user"], lambda_context)


def check(caller: Caller, type_: str, value: str, **extra: Any) -> Answer:
    body = {"location_id": CONTOSO_MADRID, "identifier": {"type": type_, "value": value}, **extra}
    return caller.post("/eligibility-checks", body)


def reasons(answer: Answer) -> dict[str, list[str]]:
    found = {e["engagement_id"]: [] for e in answer.body["eligible"]}
    found.update({e["engagement_id"]: [r["code"] for r in e["reasons"]] for e in answer.body["ineligible"]})
    return found


def scan_count(client: Any) -> int:
    return sum(page["Count"] for page in client.get_paginator("scan").paginate(TableName="ClaimsTable"))


def test_eligible_and_ineligible_with_reasons(contoso: Caller) -> None:
    answer = check(contoso, "domain", "Fabrikam.com")
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert sorted(answer.body["eligible"], key=lambda e: e["engagement_id"]) == [
        {"engagement_id": MIGRATE, "name": "Azure Migrate assessment", "payment_type": "fixed"},
        {"engagement_id": SECURITY, "name": "Security workshop", "payment_type": "fixed"},
    ]
    ineligible = {e["engagement_id"]: e for e in answer.body["ineligible"]}
    assert set(ineligible) == {AI, LEGACY}
    assert ineligible[LEGACY]["name"] == "Legacy modernisation (closed)"
    [closed] = ineligible[LEGACY]["reasons"]
    assert closed["code"] == "engagement_closed"
    assert closed["message"].startswith("Engagement Legacy modernisation (closed) is open from 2025-01-01")
    assert answer.body["tenant_mismatch_reason_required"] is False


def test_all_reasons_of_an_engagement_are_listed(contoso: Caller) -> None:
    body = {"location_id": CONTOSO_SEATTLE, "identifier": {"type": "domain", "value": "tailspintoys.com"}}
    answer = contoso.post("/eligibility-checks", body)
    assert answer.status == 200, answer.body
    assert reasons(answer) == {
        MIGRATE: ["location_not_enrolled", "criteria_not_met"],
        SECURITY: ["location_not_enrolled", "location_not_eligible"],
        AI: ["location_not_enrolled", "location_not_eligible", "identifier_type_not_accepted"],
        LEGACY: ["location_not_enrolled", "location_not_eligible", "engagement_closed"],
    }
    [migrate] = [e for e in answer.body["ineligible"] if e["engagement_id"] == MIGRATE]
    assert "'segments'" in migrate["reasons"][1]["message"]


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("tpid", "100200300", {MIGRATE: [], SECURITY: ["identifier_type_not_accepted"]}),
        ("subscription_id", "9a8b7c6d-0000-4000-8000-00000000000a", {MIGRATE: ["identifier_type_not_accepted"]}),
        ("msx_opportunity_id", "7-ABC123XYZ", {AI: [], MIGRATE: ["identifier_type_not_accepted"]}),
        ("msx_opportunity_id", "7-SMALL0001", {AI: ["criteria_not_met"]}),
        ("domain", "unknown.example", {MIGRATE: ["customer_not_found"], SECURITY: ["customer_not_found"]}),
        ("domain", "litware.com", {MIGRATE: ["customer_not_found"]}),
    ],
)
def test_each_identifier_type(contoso: Caller, type_: str, value: str, expected: dict[str, list[str]]) -> None:
    answer = check(contoso, type_, value)
    assert answer.status == 200, answer.body
    found = reasons(answer)
    assert {k: found[k] for k in expected} == expected


def test_duplicate_and_limit_reasons_after_adding(contoso: Caller, seeded: Any, lambda_context: Any) -> None:
    [mine] = contoso.post("/customers", add_customer_body()).body["claims"]
    northwind = Caller(NORTHWIND, ["incentives_user"], lambda_context)
    northwind.post(
        "/customers",
        add_customer_body(location_id=NORTHWIND_DUBLIN, engagement_ids=[SECURITY]),
    )
    answer = check(contoso, "tenant_id", FABRIKAM_TENANT)
    found = reasons(answer)
    assert found[MIGRATE] == ["duplicate_claim"]
    assert found[SECURITY] == ["active_claim_limit_reached"]
    [migrate] = [e for e in answer.body["ineligible"] if e["engagement_id"] == MIGRATE]
    assert migrate["reasons"][0]["claim_id"] == mine["claim_id"]


@pytest.mark.parametrize(
    ("email", "required"),
    [("ana@tailspintoys.com", True), ("ana@nowhere.example", True), ("ana@fabrikam.com", False)],
)
def test_tenant_mismatch_is_announced(contoso: Caller, email: str, required: bool) -> None:
    answer = check(contoso, "tenant_id", FABRIKAM_TENANT, customer_email=email)
    assert answer.status == 200, answer.body
    assert answer.body["tenant_mismatch_reason_required"] is required


def test_a_check_writes_nothing(contoso: Caller, seeded: Any) -> None:
    before = scan_count(seeded)
    check(contoso, "domain", "fabrikam.com")
    check(contoso, "tenant_id", FABRIKAM_TENANT, customer_email="ana@tailspintoys.com")
    assert scan_count(seeded) == before


def test_another_partners_location_is_refused_like_an_unknown_one(contoso: Caller) -> None:
    def refusal(location_id: str) -> Answer:
        body = {"location_id": location_id, "identifier": {"type": "domain", "value": "fabrikam.com"}}
        return contoso.post("/eligibility-checks", body)

    theirs, unknown = refusal(NORTHWIND_DUBLIN), refusal("9999999")
    assert theirs.status == 422
    assert theirs.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in theirs.body["errors"]] == ["location_id"]
    assert theirs.body == unknown.body


def test_an_invalid_identifier_is_named(contoso: Caller) -> None:
    answer = check(contoso, "tenant_id", "not-a-guid")
    assert answer.status == 422
    assert answer.body["code"] == "validation_error"
    assert [e["field"] for e in answer.body["errors"]] == ["identifier.value"]
    unknown_type = check(contoso, "email", "ana@fabrikam.com")
    assert unknown_type.status == 422
    assert [e["field"] for e in unknown_type.body["errors"]] == ["identifier.type"]


@pytest.mark.parametrize("roles", [["referral_admin"], ["mci_operations"]])
def test_a_claim_role_is_required(seeded: Any, lambda_context: Any, roles: list[str]) -> None:
    answer = check(Caller(CONTOSO, roles, lambda_context), "domain", "fabrikam.com")
    assert answer.status == 403
    assert answer.body["code"] == "forbidden"


def test_no_token_is_401(seeded: Any, lambda_context: Any) -> None:
    answer = check(Caller(None, [], lambda_context), "domain", "fabrikam.com")
    assert answer.status == 401
    assert answer.body["code"] == "unauthorized"
