"""GET /engagements, GET /locations and POST /ops/reference-data through the real handlers on moto."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mci.domain.principal import OPERATIONS_PARTNER_ID
from tests.support.api import Answer, Caller
from tests.support.reference import (
    ADATUM,
    AI,
    CONTOSO,
    CONTOSO_MADRID,
    CONTOSO_SEATTLE,
    MIGRATE,
    NORTHWIND,
    NORTHWIND_DUBLIN,
    SECURITY,
    demo_json,
)


def engagements(caller: Caller) -> Answer:
    return caller.get("/engagements")


def locations(caller: Caller) -> Answer:
    return caller.get("/locations")


def load(caller: Caller, body: Any, **kwargs: Any) -> Answer:
    return caller.post("/ops/reference-data", body, **kwargs)


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.body["code"] == code
    assert answer.body["status"] == status


def migrate_names(caller: Caller) -> list[str]:
    return [e["name"] for e in engagements(caller).body["items"] if e["engagement_id"] == MIGRATE]


def scan_count(client: Any) -> int:
    return sum(page["Count"] for page in client.get_paginator("scan").paginate(TableName="ClaimsTable"))


@pytest.fixture
def user(seeded: Any, lambda_context: Any) -> Any:
    return lambda partner_id, *roles: Caller(partner_id, list(roles or ["incentives_user"]), lambda_context)


@pytest.fixture
def ops(seeded: Any, lambda_context: Any) -> Caller:
    return Caller(OPERATIONS_PARTNER_ID, ["mci_operations"], lambda_context)


# --- GET /engagements ------------------------------------------------------------------------------------


def test_engagements_open_to_the_caller(user: Any) -> None:
    answer = engagements(user(CONTOSO))
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"] == "application/json"
    # Sorted by name; the closed legacy engagement is left out although Madrid is eligible for it.
    assert [e["engagement_id"] for e in answer.body["items"]] == [AI, MIGRATE, SECURITY]


def test_engagements_follow_the_partners_locations(user: Any) -> None:
    assert [e["engagement_id"] for e in engagements(user(NORTHWIND)).body["items"]] == [MIGRATE, SECURITY]


def test_engagements_show_what_a_partner_needs(user: Any) -> None:
    [ai] = [e for e in engagements(user(CONTOSO)).body["items"] if e["engagement_id"] == AI]
    assert ai["payment_type"] == "variable"
    assert ai["identifier_types"] == ["msx_opportunity_id"]
    assert ai["payment_rules"]["hourly_rate_usd"] == 150
    assert ai["consent_window_days"] == 30


def test_a_partner_with_only_unenrolled_locations_sees_no_engagements(user: Any, ops: Caller) -> None:
    body = {
        "locations": [
            {
                "location_id": "5550001",
                "partner_id": "p-litware-partners",
                "name": "Litware Partners Oslo",
                "enrolled_in_mci": False,
                "eligible_engagements": [MIGRATE, SECURITY],
            }
        ]
    }
    assert load(ops, body).status == 200
    answer = engagements(user("p-litware-partners"))
    assert answer.status == 200
    assert answer.body == {"items": []}


def test_a_partner_without_locations_sees_nothing(user: Any) -> None:
    assert engagements(user("p-stranger")).body == {"items": []}
    assert locations(user("p-stranger")).body == {"items": []}


@pytest.mark.parametrize("roles", [["incentives_user"], ["incentives_admin"], ["referral_admin"]])
def test_browsing_roles_may_list(user: Any, roles: list[str]) -> None:
    assert engagements(user(CONTOSO, *roles)).status == 200
    assert locations(user(CONTOSO, *roles)).status == 200


@pytest.mark.parametrize("roles", [["mci_operations"], ["guest"]])
def test_other_roles_may_not_list(user: Any, roles: list[str]) -> None:
    assert_problem(engagements(user(CONTOSO, *roles)), 403, "forbidden")
    assert_problem(locations(user(CONTOSO, *roles)), 403, "forbidden")


def test_listing_needs_a_token(seeded: Any, lambda_context: Any) -> None:
    anonymous = Caller(None, [], lambda_context)
    assert_problem(engagements(anonymous), 401, "unauthorized")
    assert_problem(locations(anonymous), 401, "unauthorized")


# --- GET /locations ------------------------------------------------------------------------------------


def test_locations_are_the_callers_only(user: Any) -> None:
    answer = locations(user(CONTOSO))
    assert answer.status == 200, answer.body
    assert [loc["location_id"] for loc in answer.body["items"]] == [CONTOSO_MADRID, CONTOSO_SEATTLE]
    assert {loc["partner_id"] for loc in answer.body["items"]} == {CONTOSO}
    seattle = answer.body["items"][1]
    assert seattle["enrolled_in_mci"] is False
    assert seattle["eligible_engagements"] == [MIGRATE]


def test_other_partners_see_their_own(user: Any) -> None:
    assert [loc["location_id"] for loc in locations(user(NORTHWIND)).body["items"]] == [NORTHWIND_DUBLIN]
    assert len(locations(user(ADATUM)).body["items"]) == 1


# --- POST /ops/reference-data ------------------------------------------------------------------------


def test_operations_load_reference_data(ops: Caller) -> None:
    answer = load(ops, demo_json())
    assert answer.status == 200, answer.body
    assert answer.body == {"engagements": 4, "locations": 4, "customers": 7, "domains": 4}


def test_records_are_upserted_by_id(ops: Caller, user: Any, seeded: Any) -> None:
    before = scan_count(seeded)
    data = copy.deepcopy(demo_json())
    migrate = next(e for e in data["engagements"] if e["engagement_id"] == MIGRATE)
    migrate["name"] = "Azure Migrate assessment (2027)"
    madrid = next(loc for loc in data["locations"] if loc["location_id"] == CONTOSO_MADRID)
    madrid["eligible_engagements"] = [MIGRATE]
    answer = load(ops, {"engagements": [migrate], "locations": [madrid]})
    assert answer.body == {"engagements": 1, "locations": 1, "customers": 0, "domains": 0}
    assert scan_count(seeded) == before
    items = engagements(user(CONTOSO)).body["items"]
    assert [(e["engagement_id"], e["name"]) for e in items] == [(MIGRATE, "Azure Migrate assessment (2027)")]


def test_a_new_domain_resolves_after_loading(ops: Caller, user: Any) -> None:
    check = {"location_id": CONTOSO_MADRID, "identifier": {"type": "domain", "value": "fabrikam.es"}}
    before = user(CONTOSO).post("/eligibility-checks", check)
    assert before.body["eligible"] == []
    tenant = "5f1c2a3b-0000-4000-8000-000000000001"
    assert load(ops, {"domains": [{"domain": "FABRIKAM.ES", "tenant_id": tenant.upper()}]}).status == 200
    after = user(CONTOSO).post("/eligibility-checks", check)
    assert [e["engagement_id"] for e in after.body["eligible"]] == [MIGRATE, SECURITY]


@pytest.mark.parametrize("roles", [["incentives_user"], ["incentives_admin", "referral_admin"], []])
def test_only_operations_may_load(seeded: Any, lambda_context: Any, roles: list[str]) -> None:
    before = scan_count(seeded)
    body = {"domains": [{"domain": "evil.example", "tenant_id": "5f1c2a3b-0000-4000-8000-000000000009"}]}
    answer = load(Caller(CONTOSO, roles, lambda_context), body)
    assert_problem(answer, 403, "forbidden")
    assert answer.body["detail"] == "Loading reference data needs the role mci_operations"
    assert scan_count(seeded) == before


@pytest.mark.parametrize(
    ("partner_id", "roles"),
    [
        (CONTOSO, ["incentives_user", "mci_operations"]),
        (CONTOSO, ["referral_admin", "mci_operations"]),
        (OPERATIONS_PARTNER_ID, ["incentives_admin", "mci_operations"]),
        (CONTOSO, ["mci_operations"]),
    ],
)
def test_operations_mixed_with_a_partner_or_of_a_partner_may_not_load(
    seeded: Any, lambda_context: Any, partner_id: str, roles: list[str]
) -> None:
    """Rule 30 (issue 12 item 6): operations never carry a partner role nor name a partner organisation."""
    before = scan_count(seeded)
    body = {"domains": [{"domain": "evil.example", "tenant_id": "5f1c2a3b-0000-4000-8000-000000000009"}]}
    answer = load(Caller(partner_id, roles, lambda_context), body)
    assert_problem(answer, 403, "forbidden")
    assert "programme operations only" in answer.body["detail"]
    assert scan_count(seeded) == before


def test_loading_needs_a_token(seeded: Any, lambda_context: Any) -> None:
    before = scan_count(seeded)
    assert_problem(load(Caller(None, [], lambda_context), demo_json()), 401, "unauthorized")
    assert scan_count(seeded) == before


def test_an_invalid_engagement_is_refused_naming_it(ops: Caller, seeded: Any) -> None:
    before = scan_count(seeded)
    engagement = {**demo_json()["engagements"][0], "identifier_types": ["msx_opportunity_id"]}
    answer = load(
        ops,
        {
            "engagements": [engagement],
            "domains": [{"domain": "ok.example", "tenant_id": "5f1c2a3b-0000-4000-8000-000000000009"}],
        },
    )
    assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["engagements[0]"]
    assert "fixed payment accepts only" in answer.body["errors"][0]["message"]
    assert scan_count(seeded) == before  # nothing of the batch was written


def test_an_invalid_customer_identifier_is_named_by_position(ops: Caller, seeded: Any) -> None:
    before = scan_count(seeded)
    good = {"identifier_type": "tpid", "value": "42", "name": "Ok", "segment": "SMB", "country": "US"}
    bad = {"identifier_type": "tenant_id", "value": "not-a-guid", "name": "Bad", "segment": "SMB", "country": "US"}
    answer = load(ops, {"customers": [good, bad]})
    assert_problem(answer, 422, "validation_error")
    assert scan_count(seeded) == before
    assert [e["field"] for e in answer.body["errors"]] == ["customers[1].value"]


def test_an_invalid_domain_tenant_is_named_by_position(ops: Caller) -> None:
    answer = load(ops, {"domains": [{"domain": "fabrikam.com", "tenant_id": "fabrikam"}]})
    assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["domains[0].tenant_id"]


def test_invalid_records_are_refused_as_problems_not_500(ops: Caller, seeded: Any) -> None:
    """Whatever the field naming, an invalid identifier in reference data is a 422, never a 500."""
    before = scan_count(seeded)
    for body in (
        {"customers": [{"identifier_type": "tenant_id", "value": "x", "name": "B", "segment": "S", "country": "US"}]},
        {"domains": [{"domain": "fabrikam.com", "tenant_id": "fabrikam"}]},
        {"domains": [{"domain": "not a domain", "tenant_id": "5f1c2a3b-0000-4000-8000-000000000009"}]},
    ):
        assert_problem(load(ops, body), 422, "validation_error")
    assert scan_count(seeded) == before


def test_an_idempotency_key_replays_the_first_load_and_refuses_another_body(ops: Caller, user: Any) -> None:
    """SPEC §4: every mutating request accepts Idempotency-Key, the operations' load too."""
    migrate = next(e for e in demo_json()["engagements"] if e["engagement_id"] == MIGRATE)
    first_body = {"engagements": [{**migrate, "name": "Azure Migrate (first)"}]}
    key = {"Idempotency-Key": "load-2027-catalogue"}
    first = load(ops, first_body, headers=key)
    assert first.status == 200, first.body
    assert load(ops, {"engagements": [{**migrate, "name": "Azure Migrate (later)"}]}).status == 200

    again = load(ops, first_body, headers=key)  # the client's retry: answered, nothing written again
    assert (again.status, again.body) == (200, first.body)
    assert migrate_names(user(CONTOSO)) == ["Azure Migrate (later)"]

    other = load(ops, {"engagements": [{**migrate, "name": "Azure Migrate (other)"}]}, headers=key)
    assert_problem(other, 422, "validation_error")
    assert [(e["field"], e["code"]) for e in other.body["errors"]] == [("Idempotency-Key", "idempotency_key_reused")]
    dry_run = load(ops, first_body, headers=key, query={"dry_run": "true"})  # a dry run is another request
    assert_problem(dry_run, 422, "validation_error")
    assert migrate_names(user(CONTOSO)) == ["Azure Migrate (later)"]


def test_a_malformed_idempotency_key_is_refused_before_loading(ops: Caller, seeded: Any) -> None:
    before = scan_count(seeded)
    body = {"domains": [{"domain": "fabrikam.es", "tenant_id": "5f1c2a3b-0000-4000-8000-000000000001"}]}
    answer = load(ops, body, headers={"Idempotency-Key": "has space"})
    assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["Idempotency-Key"]
    assert scan_count(seeded) == before


def test_a_dry_run_validates_and_writes_nothing(ops: Caller, user: Any, seeded: Any) -> None:
    before = scan_count(seeded)
    body = {"domains": [{"domain": "fabrikam.es", "tenant_id": "5f1c2a3b-0000-4000-8000-000000000001"}]}
    answer = load(ops, body, query={"dry_run": "true"})
    assert answer.status == 200, answer.body
    assert answer.body == {"engagements": 0, "locations": 0, "customers": 0, "domains": 1}
    assert scan_count(seeded) == before
    check = {"location_id": CONTOSO_MADRID, "identifier": {"type": "domain", "value": "fabrikam.es"}}
    assert user(CONTOSO).post("/eligibility-checks", check).body["eligible"] == []


def test_a_dry_run_names_invalid_records_as_a_load_does(ops: Caller, seeded: Any) -> None:
    bad = {"identifier_type": "tenant_id", "value": "not-a-guid", "name": "Bad", "segment": "SMB", "country": "US"}
    answer = load(ops, {"customers": [bad]}, query={"dry_run": "true"})
    assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["customers[0].value"]


def test_a_dry_run_still_needs_the_operations_role(seeded: Any, lambda_context: Any) -> None:
    answer = load(Caller(CONTOSO, ["incentives_user"], lambda_context), demo_json(), query={"dry_run": "true"})
    assert_problem(answer, 403, "forbidden")
