"""Rules 3-6: what is checked, on which identifier, and every reason why a customer is not eligible."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import pytest

from mci.adapters.memory import MemoryClaimRepository, MemoryReferenceRepository
from mci.domain.claims import ClaimState
from mci.domain.clock import FixedClock
from mci.domain.commands import AddCustomer, EligibilityCheck
from mci.domain.eligibility import LimitState, ReasonCode, evaluate
from mci.domain.errors import Conflict, RuleViolation
from mci.domain.identifiers import parse_identifier
from mci.domain.nomination import Nominations, Preview
from mci.domain.ports import ClaimChange
from mci.domain.principal import Principal
from mci.domain.reference import CustomerRecord, Engagement, Location, ReferenceData
from tests.support.reference import (
    ADATUM,
    ADATUM_LISBON,
    AI,
    CONTOSO,
    CONTOSO_MADRID,
    CONTOSO_SEATTLE,
    FABRIKAM_TENANT,
    LEGACY,
    LITWARE_TENANT,
    MIGRATE,
    NORTHWIND,
    NORTHWIND_DUBLIN,
    NOW,
    SECURITY,
    TAILSPIN_TENANT,
    add_customer_body,
    demo_data,
)

CONTOSO_BILBAO = "1234569"  # enrolled, eligible for MIGRATE only
FRENCH_TENANT = "5f1c2a3b-0000-4000-8000-0000000000f7"  # SMB in FR: fails MIGRATE's countries only
PARTNER_LOCATIONS = {CONTOSO: CONTOSO_MADRID, NORTHWIND: NORTHWIND_DUBLIN, ADATUM: ADATUM_LISBON}


def user(partner_id: str) -> Principal:
    return Principal(partner_id, frozenset({"incentives_user"}), "user-1")


@pytest.fixture
def reference() -> MemoryReferenceRepository:
    repository = MemoryReferenceRepository(demo_data())
    repository.save(
        ReferenceData.model_validate(
            {
                "locations": [
                    {
                        "location_id": CONTOSO_BILBAO,
                        "partner_id": CONTOSO,
                        "name": "Contoso Partners Bilbao",
                        "enrolled_in_mci": True,
                        "eligible_engagements": [MIGRATE],
                    }
                ],
                "customers": [
                    {
                        "identifier_type": "tenant_id",
                        "value": FRENCH_TENANT,
                        "name": "Coho Winery",
                        "segment": "SMB",
                        "country": "FR",
                    }
                ],
                "domains": [{"domain": "cohowinery.com", "tenant_id": FRENCH_TENANT}],
            }
        )
    )
    return repository


@pytest.fixture
def claims() -> MemoryClaimRepository:
    return MemoryClaimRepository()


@pytest.fixture
def nominations(reference: MemoryReferenceRepository, claims: MemoryClaimRepository) -> Nominations:
    ids = (f"claim-{n}" for n in itertools.count(1))
    return Nominations(
        reference=reference, claims=claims, clock=FixedClock(NOW), new_id=lambda: next(ids), sleep=lambda _: None
    )


def preview(
    nominations: Nominations,
    type_: str,
    value: str,
    *,
    location_id: str = CONTOSO_MADRID,
    partner_id: str = CONTOSO,
    customer_email: str | None = None,
) -> Preview:
    check: dict[str, Any] = {"location_id": location_id, "identifier": {"type": type_, "value": value}}
    if customer_email is not None:
        check["customer_email"] = customer_email
    return nominations.preview(user(partner_id), EligibilityCheck.model_validate(check))


def reasons_by_engagement(result: Preview) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {e.engagement_id: [] for e in result.eligible}
    for verdict in result.ineligible:
        found[verdict.engagement.engagement_id] = [(r.code.value, r.message) for r in verdict.reasons]
    return found


def codes(result: Preview, engagement_id: str) -> list[str]:
    return [code for code, _ in reasons_by_engagement(result)[engagement_id]]


def add(nominations: Nominations, partner_id: str = CONTOSO, **overrides: Any) -> list[Any]:
    body = add_customer_body(location_id=PARTNER_LOCATIONS[partner_id], **overrides)
    return nominations.add_customer(user(partner_id), AddCustomer.model_validate(body))


# --- rule 6: the preview ---------------------------------------------------------------------------


def test_preview_splits_every_engagement_into_eligible_and_ineligible(nominations: Nominations) -> None:
    result = preview(nominations, "domain", "fabrikam.com")
    assert sorted(e.engagement_id for e in result.eligible) == [MIGRATE, SECURITY]
    assert reasons_by_engagement(result) == {
        MIGRATE: [],
        SECURITY: [],
        AI: [
            (
                "identifier_type_not_accepted",
                "Engagement AI Accelerate (variable) accepts msx_opportunity_id, not domain.",
            )
        ],
        LEGACY: [
            (
                "engagement_closed",
                "Engagement Legacy modernisation (closed) is open from 2025-01-01 to 2025-12-31, not on 2026-11-27.",
            )
        ],
    }


def test_preview_keeps_all_reasons_of_each_ineligible_engagement(nominations: Nominations) -> None:
    result = preview(nominations, "domain", "tailspintoys.com", location_id=CONTOSO_SEATTLE)
    assert result.eligible == []
    assert {e: codes(result, e) for e in (MIGRATE, SECURITY, AI, LEGACY)} == {
        MIGRATE: ["location_not_enrolled", "criteria_not_met"],
        SECURITY: ["location_not_enrolled", "location_not_eligible"],
        AI: ["location_not_enrolled", "location_not_eligible", "identifier_type_not_accepted"],
        LEGACY: ["location_not_enrolled", "location_not_eligible", "engagement_closed"],
    }


def test_preview_writes_nothing(nominations: Nominations, claims: MemoryClaimRepository) -> None:
    preview(nominations, "domain", "fabrikam.com")
    assert claims.claims == {}
    assert claims.counters == {}
    assert claims.guards == {}


# --- rule 5: each reason, with its sentence -------------------------------------------------------


def test_location_not_enrolled(nominations: Nominations) -> None:
    result = preview(nominations, "domain", "fabrikam.com", location_id=CONTOSO_SEATTLE)
    assert reasons_by_engagement(result)[MIGRATE] == [
        ("location_not_enrolled", "Location 1234568 is not enrolled in MCI.")
    ]


def test_location_not_eligible(nominations: Nominations) -> None:
    result = preview(nominations, "domain", "fabrikam.com", location_id=CONTOSO_BILBAO)
    assert [e.engagement_id for e in result.eligible] == [MIGRATE]
    assert reasons_by_engagement(result)[SECURITY] == [
        ("location_not_eligible", "Location 1234569 is not eligible for engagement Security workshop.")
    ]


def engagement(**overrides: Any) -> Engagement:
    data: dict[str, Any] = {
        "engagement_id": "e-test",
        "name": "Test engagement",
        "payment_type": "fixed",
        "identifier_types": ["tenant_id"],
        "opens_on": "2026-11-27",
        "closes_on": "2026-11-27",
    }
    data.update(overrides)
    return Engagement.model_validate(data)


def test_evaluate_engagement_open_on_its_first_and_last_day() -> None:
    location = Location(
        location_id="1234567", partner_id=CONTOSO, name="x", enrolled_in_mci=True, eligible_engagements=["e-test"]
    )
    identifier = parse_identifier("tenant_id", FABRIKAM_TENANT)
    customer = CustomerRecord.model_validate(
        {"identifier_type": "tenant_id", "value": FABRIKAM_TENANT, "name": "F", "segment": "SMB", "country": "ES"}
    )

    def run(today: date) -> list[str]:
        reasons = evaluate(
            engagement(),
            location=location,
            identifier=identifier,
            checked=identifier,
            customer=customer,
            limit=LimitState(),
            today=today,
        )
        return [r.code.value for r in reasons]

    assert run(date(2026, 11, 27)) == []
    assert run(date(2026, 11, 26)) == ["engagement_closed"]
    assert run(date(2026, 11, 28)) == ["engagement_closed"]


def test_engagement_closed(nominations: Nominations) -> None:
    result = preview(nominations, "domain", "fabrikam.com")
    assert codes(result, LEGACY) == ["engagement_closed"]


def test_identifier_type_not_accepted(nominations: Nominations) -> None:
    result = preview(nominations, "tpid", "100200300")
    assert [e.engagement_id for e in result.eligible] == [MIGRATE]
    assert reasons_by_engagement(result)[SECURITY] == [
        (
            "identifier_type_not_accepted",
            "Engagement Security workshop accepts domain, tenant_id, subscription_id, not tpid.",
        )
    ]


@pytest.mark.parametrize(
    ("type_", "value", "message"),
    [
        ("domain", "unknown.example", "Customer not found: domain unknown.example has no known tenant."),
        (
            "domain",
            "litware.com",
            f"Customer not found: no customer record exists for tenant_id {LITWARE_TENANT}.",
        ),
        (
            "tenant_id",
            "5f1c2a3b-0000-4000-8000-0000000000ff",
            "Customer not found: no customer record exists for tenant_id 5f1c2a3b-0000-4000-8000-0000000000ff.",
        ),
    ],
)
def test_customer_not_found(nominations: Nominations, type_: str, value: str, message: str) -> None:
    result = preview(nominations, type_, value)
    assert reasons_by_engagement(result)[MIGRATE] == [("customer_not_found", message)]
    assert reasons_by_engagement(result)[SECURITY] == [("customer_not_found", message)]


def test_criteria_not_met_names_the_segments_criterion(nominations: Nominations) -> None:
    result = preview(nominations, "domain", "tailspintoys.com")
    assert reasons_by_engagement(result)[MIGRATE] == [
        (
            "criteria_not_met",
            "Criterion 'segments': the customer's segment ENT is not one of SMB, SMC.",
        )
    ]
    assert codes(result, SECURITY) == []  # ENT is accepted there


def test_criteria_not_met_names_the_countries_criterion(nominations: Nominations) -> None:
    result = preview(nominations, "domain", "cohowinery.com")
    assert reasons_by_engagement(result)[MIGRATE] == [
        ("criteria_not_met", "Criterion 'countries': the customer's country FR is not one of US, ES.")
    ]


def test_criteria_not_met_names_the_opportunity_value_criterion(nominations: Nominations) -> None:
    small = preview(nominations, "msx_opportunity_id", "7-SMALL0001")
    assert reasons_by_engagement(small)[AI] == [
        (
            "criteria_not_met",
            "Criterion 'min_opportunity_value_usd': the opportunity's estimated value is below 20000 USD.",
        )
    ]
    large = preview(nominations, "msx_opportunity_id", "7-ABC123XYZ")
    assert [e.engagement_id for e in large.eligible] == [AI]


def test_every_failed_criterion_is_listed() -> None:
    customer = CustomerRecord.model_validate(
        {"identifier_type": "tenant_id", "value": FABRIKAM_TENANT, "name": "F", "segment": "ENT", "country": "FR"}
    )
    identifier = customer.identifier
    reasons = evaluate(
        engagement(criteria={"segments": ["SMB"], "countries": ["US"], "min_opportunity_value_usd": 1}),
        location=Location(
            location_id="1234567", partner_id=CONTOSO, name="x", enrolled_in_mci=True, eligible_engagements=["e-test"]
        ),
        identifier=identifier,
        checked=identifier,
        customer=customer,
        limit=LimitState(),
        today=date(2026, 11, 27),
    )
    assert [r.code for r in reasons] == [ReasonCode.CRITERIA_NOT_MET] * 3
    assert ["'segments'" in reasons[0].message, "'countries'" in reasons[1].message] == [True, True]
    assert "'min_opportunity_value_usd'" in reasons[2].message


def test_active_claim_limit_counts_every_partner(nominations: Nominations) -> None:
    add(nominations, NORTHWIND, engagement_ids=[SECURITY])
    result = preview(nominations, "domain", "fabrikam.com")
    assert reasons_by_engagement(result)[SECURITY] == [
        (
            "active_claim_limit_reached",
            "This customer already has 1 active claim(s) in engagement Security workshop; the limit is 1.",
        )
    ]
    assert codes(result, MIGRATE) == []  # limit 2 there


def test_active_claim_limit_of_two_needs_two_claims(nominations: Nominations) -> None:
    add(nominations, NORTHWIND)
    assert codes(preview(nominations, "domain", "fabrikam.com"), MIGRATE) == []
    add(nominations, ADATUM)
    assert codes(preview(nominations, "domain", "fabrikam.com"), MIGRATE) == ["active_claim_limit_reached"]


def test_duplicate_claim_names_the_existing_claim(nominations: Nominations) -> None:
    [claim] = add(nominations)
    result = preview(nominations, "domain", "fabrikam.com")
    [verdict] = [v for v in result.ineligible if v.engagement.engagement_id == MIGRATE]
    [reason] = verdict.reasons
    assert reason.code is ReasonCode.DUPLICATE_CLAIM
    assert reason.claim_id == claim.claim_id
    assert reason.message == (
        f"Your organisation already has active claim {claim.claim_id} for this customer "
        "in engagement Azure Migrate assessment."
    )
    assert reason.as_dict() == {"code": "duplicate_claim", "message": reason.message, "claim_id": claim.claim_id}


def test_limit_and_duplicate_are_both_reported(nominations: Nominations) -> None:
    add(nominations, NORTHWIND)
    add(nominations, CONTOSO)
    result = preview(nominations, "domain", "fabrikam.com")
    assert codes(result, MIGRATE) == ["active_claim_limit_reached", "duplicate_claim"]


def test_terminal_claims_stop_counting(nominations: Nominations, claims: MemoryClaimRepository) -> None:
    [claim] = add(nominations, NORTHWIND, engagement_ids=[SECURITY])
    cancelled = claim.transition(ClaimState.CANCELLED, at=NOW, actor="partner", reason="test")
    claims.apply(ClaimChange(before=claim, after=cancelled))
    assert codes(preview(nominations, "domain", "fabrikam.com"), SECURITY) == []


# --- rule 3: a domain is checked as its tenant, nothing cascades ------------------------------------


@pytest.mark.parametrize("value", ["fabrikam.com", "  FABRIKAM.com. "])
def test_domain_is_checked_as_its_tenant(nominations: Nominations, value: str) -> None:
    by_domain = preview(nominations, "domain", value)
    by_tenant = preview(nominations, "tenant_id", FABRIKAM_TENANT)
    assert reasons_by_engagement(by_domain) | {AI: []} == reasons_by_engagement(by_tenant) | {AI: []}
    assert sorted(e.engagement_id for e in by_domain.eligible) == [MIGRATE, SECURITY]


def test_domain_claims_carry_the_resolved_tenant_and_its_key(nominations: Nominations) -> None:
    [claim] = add(nominations)
    assert claim.identifier.value == "fabrikam.com"
    assert claim.identifier.resolved_tenant_id == FABRIKAM_TENANT
    assert claim.customer_key == f"tenant_id:{FABRIKAM_TENANT}"


def test_adding_by_domain_then_by_its_tenant_is_a_duplicate(nominations: Nominations) -> None:
    [first] = add(nominations, engagement_ids=[MIGRATE])
    with pytest.raises(Conflict) as raised:
        add(nominations, identifier={"type": "tenant_id", "value": FABRIKAM_TENANT.upper()})
    assert raised.value.code == "duplicate_claim"
    assert raised.value.extra["existing_claim_id"] == first.claim_id


def test_adding_by_tenant_then_by_its_domain_is_a_duplicate(nominations: Nominations) -> None:
    [first] = add(nominations, identifier={"type": "tenant_id", "value": FABRIKAM_TENANT})
    with pytest.raises(Conflict) as raised:
        add(nominations, identifier={"type": "domain", "value": "Fabrikam.COM"})
    assert raised.value.code == "duplicate_claim"
    assert raised.value.extra["existing_claim_id"] == first.claim_id


def test_limits_use_the_tenant_key_across_partners(nominations: Nominations) -> None:
    add(nominations, NORTHWIND, engagement_ids=[SECURITY], identifier={"type": "tenant_id", "value": FABRIKAM_TENANT})
    with pytest.raises(Conflict) as raised:
        add(nominations, engagement_ids=[SECURITY])
    assert raised.value.code == "active_claim_limit_reached"


def test_a_domain_without_a_customer_record_does_not_fall_back_to_other_identifiers(
    nominations: Nominations,
) -> None:
    """Litware has a TPID record; its domain resolves to a tenant without one: not found, no cascade."""
    assert codes(preview(nominations, "tpid", "100200300"), MIGRATE) == []
    assert codes(preview(nominations, "domain", "litware.com"), MIGRATE) == ["customer_not_found"]


def test_limits_of_one_identifier_do_not_cascade_to_another(nominations: Nominations) -> None:
    tpid = {"type": "tpid", "value": "100200300"}
    add(nominations, NORTHWIND, identifier=tpid, customer_contact={"name": "L", "email": "l@litware.com"})
    add(nominations, ADATUM, identifier=tpid, customer_contact={"name": "L", "email": "l@litware.com"})
    assert codes(preview(nominations, "tpid", "100200300"), MIGRATE) == ["active_claim_limit_reached"]
    # The same company by its tenant is another customer key: not found, not over the limit.
    assert codes(preview(nominations, "tenant_id", LITWARE_TENANT), MIGRATE) == ["customer_not_found"]


def test_subscription_ids_are_checked_as_given(nominations: Nominations) -> None:
    result = preview(nominations, "subscription_id", "9A8B7C6D-0000-4000-8000-00000000000A")
    assert [e.engagement_id for e in result.eligible] == [SECURITY]
    assert codes(result, MIGRATE) == ["identifier_type_not_accepted"]


# --- rule 4: tenant mismatch ------------------------------------------------------------------------


def tenant_body(email: str, **overrides: Any) -> dict[str, Any]:
    return {
        "identifier": {"type": "tenant_id", "value": FABRIKAM_TENANT},
        "customer_contact": {"name": "Ana", "email": email},
        **overrides,
    }


@pytest.mark.parametrize("email", ["ana@tailspintoys.com", "ana@unknown-domain.example"])
def test_tenant_mismatch_needs_a_reason(nominations: Nominations, claims: MemoryClaimRepository, email: str) -> None:
    with pytest.raises(RuleViolation) as raised:
        add(nominations, **tenant_body(email))
    assert raised.value.status == 422
    assert raised.value.code == "tenant_mismatch_reason_required"
    assert raised.value.extra == {"field": "tenant_mismatch_reason"}
    assert claims.claims == {}


@pytest.mark.parametrize("email", ["ana@tailspintoys.com", "ana@unknown-domain.example"])
def test_tenant_mismatch_with_a_reason_is_accepted_and_kept(nominations: Nominations, email: str) -> None:
    [claim] = add(nominations, **tenant_body(email, tenant_mismatch_reason="Contact works for the parent company"))
    assert claim.tenant_mismatch_reason == "Contact works for the parent company"
    assert claim.customer_key == f"tenant_id:{FABRIKAM_TENANT}"


def test_matching_tenant_needs_no_reason(nominations: Nominations) -> None:
    [claim] = add(nominations, **tenant_body("Ana@FABRIKAM.com"))
    assert claim.tenant_mismatch_reason is None


def test_mismatch_rule_applies_to_tenant_ids_only(nominations: Nominations) -> None:
    [claim] = add(nominations, customer_contact={"name": "Ana", "email": "ana@tailspintoys.com"})
    assert claim.identifier.type.value == "domain"


@pytest.mark.parametrize(
    ("type_", "value", "email", "required"),
    [
        ("tenant_id", FABRIKAM_TENANT, "ana@tailspintoys.com", True),
        ("tenant_id", FABRIKAM_TENANT, "ana@nobody.example", True),
        ("tenant_id", FABRIKAM_TENANT, "not-an-email", True),
        ("tenant_id", FABRIKAM_TENANT, "ana@fabrikam.com", False),
        ("tenant_id", TAILSPIN_TENANT, "ana@tailspintoys.com", False),
        ("tenant_id", FABRIKAM_TENANT, None, False),
        ("domain", "fabrikam.com", "ana@tailspintoys.com", False),
    ],
)
def test_preview_says_when_a_mismatch_reason_is_required(
    nominations: Nominations, type_: str, value: str, email: str | None, required: bool
) -> None:
    result = preview(nominations, type_, value, customer_email=email)
    assert result.tenant_mismatch_reason_required is required
