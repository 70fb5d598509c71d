"""Rules 9-11 on the in-memory fakes: claiming a known customer, add or claim (not both), limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from mci.domain.claims import ClaimState, CustomerContact, Decision, Origin, PartnerContact
from mci.domain.commands import ClaimCustomer
from mci.domain.customers_page import Action, Tab
from mci.domain.errors import Conflict, DomainError, Forbidden, NotFound, RuleViolation, ValidationFailed
from mci.domain.principal import Principal
from mci.domain.reference import ReferenceData
from tests.support.consent import FIRST_REQUEST, principal, token_in
from tests.support.memory_lifecycle import MemoryLifecycle
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
    NOW,
    SECURITY,
    demo_json,
)
from tests.support.store_snapshots import assert_all_counters_match

KEY = f"tenant_id:{FABRIKAM_TENANT}"
DAY = timedelta(days=1)
RELECLOUD = "msx_opportunity_id:7-ABC123XYZ"


@pytest.fixture
def world() -> Iterator[MemoryLifecycle]:
    made = MemoryLifecycle()
    yield made
    assert_all_counters_match(made.view)  # rule 11 after every test: each counter equals its active claims


@pytest.fixture
def known(world: MemoryLifecycle) -> str:
    """Fabrikam, known to Contoso: it accepted consent on an Azure Migrate claim (still active)."""
    world.granted()
    [customer] = world.claims.list_known_customers(CONTOSO)
    assert customer.customer_id == KEY
    return customer.customer_id


def refused(call: Callable[[], Any], error: type[DomainError]) -> Any:
    with pytest.raises(error) as caught:
        call()
    return caught.value


def claims_and_counters(world: MemoryLifecycle) -> tuple[dict[str, Any], dict[Any, set[str]]]:
    return dict(world.claims.claims), {k: set(c.holders) for k, c in world.claims.counters.items()}


def test_a_known_customer_is_claimed_with_the_contacts_of_its_last_claim(world: MemoryLifecycle, known: str) -> None:
    customer = world.claims.get_known_customer(CONTOSO, known)
    assert customer is not None
    world.at(NOW + DAY)
    [claim] = world.claim_customer(known, engagement_ids=[SECURITY])
    assert claim.origin is Origin.CLAIMED
    assert (claim.partner_id, claim.engagement_id, claim.state) == (CONTOSO, SECURITY, ClaimState.PENDING_CONSENT)
    assert claim.identifier.type.value == "tenant_id"
    assert claim.identifier.value == FABRIKAM_TENANT
    assert claim.customer_key == known
    assert claim.customer_contact == CustomerContact.model_validate(customer.customer_contact)
    assert claim.partner_contact == PartnerContact.model_validate(customer.partner_contact)
    assert claim.consent_deadline == NOW + 31 * DAY
    assert claim.pending_reminders == [7, 1]
    assert [(h.from_, h.to, h.reason) for h in claim.history] == [(None, ClaimState.PENDING_CONSENT, "claimed")]
    assert world.stored(claim.claim_id) == claim
    assert world.view.counter(SECURITY, known).holders == {claim.claim_id}  # type: ignore[union-attr]
    assert_all_counters_match(world.view)


def test_the_last_consent_sets_the_contacts_a_claim_starts_with(world: MemoryLifecycle, known: str) -> None:
    [security] = world.claim_customer(known, engagement_ids=[SECURITY])
    newer = {"name": "Luis Pérez", "email": "luis@fabrikam.com", "language": "es"}
    partner = {"name": "Kai Berg", "email": "kai@contoso-partners.com"}
    world.request(security.claim_id, **FIRST_REQUEST, customer_contact=newer, partner_contact=partner)
    world.decisions.decide(token_in(world.mailer.sent[-1].text), Decision.ACCEPT)
    assert world.claims.get_known_customer(CONTOSO, known).last_claim_id == security.claim_id  # type: ignore[union-attr]
    world.cancel(world.claims.claims["claim-0001"].claim_id)  # the first claim, in Azure Migrate
    [again] = world.claim_customer(known, engagement_ids=[MIGRATE])
    assert again.customer_contact == CustomerContact.model_validate(newer)
    assert again.partner_contact == PartnerContact.model_validate(partner)


def test_the_contacts_can_be_changed_when_claiming(world: MemoryLifecycle, known: str) -> None:
    contact = {"name": "Eva Ruiz", "email": "eva@FABRIKAM.com", "phone": "+34 600 111 222", "language": "en"}
    [claim] = world.claim_customer(known, engagement_ids=[SECURITY], customer_contact=contact)
    assert claim.customer_contact == CustomerContact(
        name="Eva Ruiz", email="eva@fabrikam.com", phone="+34 600 111 222", language="en"
    )
    assert claim.partner_contact.email == "sam@contoso-partners.com"  # not given: the last claim's


def test_several_engagements_all_or_nothing(world: MemoryLifecycle, known: str) -> None:
    before = claims_and_counters(world)
    error = refused(lambda: world.claim_customer(known, engagement_ids=[SECURITY, MIGRATE]), Conflict)
    assert (error.code, error.extra["existing_claim_id"]) == ("duplicate_claim", "claim-0001")
    error = refused(lambda: world.claim_customer(known, engagement_ids=[SECURITY, LEGACY]), RuleViolation)
    assert error.code == "engagement_closed"
    assert claims_and_counters(world) == before
    world.cancel("claim-0001")
    made = world.claim_customer(known, engagement_ids=[SECURITY, MIGRATE])
    assert [c.engagement_id for c in made] == [SECURITY, MIGRATE]
    assert len({c.claim_id for c in made}) == 2
    assert_all_counters_match(world.view)


def test_another_partners_known_customer_is_answered_like_an_unknown_one(world: MemoryLifecycle, known: str) -> None:
    before = claims_and_counters(world)

    def northwind_claims(customer_id: str) -> NotFound:
        fields = {"location_id": NORTHWIND_DUBLIN, "engagement_ids": [SECURITY]}
        error: NotFound = refused(lambda: world.claim_customer(customer_id, NORTHWIND, **fields), NotFound)
        return error

    answers = [
        northwind_claims(c)
        for c in (known, "tenant_id:5f1c2a3b-0000-4000-8000-00000000ffff", "garbage", "tenant_id:" + "a" * 400)
    ]
    assert {(e.status, e.code, e.detail) for e in answers} == {(404, "not_found", "Known customer not found")}
    assert claims_and_counters(world) == before


def test_a_customer_that_only_was_added_is_not_known(world: MemoryLifecycle) -> None:
    world.add()
    world.requested("claim-0001")
    refused(lambda: world.claim_customer(KEY, engagement_ids=[SECURITY]), NotFound)


def test_add_or_claim_not_both(world: MemoryLifecycle, known: str) -> None:
    error = refused(lambda: world.claim_customer(known, engagement_ids=[MIGRATE]), Conflict)
    assert (error.status, error.code) == (409, "duplicate_claim")
    assert error.extra["existing_claim_id"] == "claim-0001"
    assert "claim-0001" in error.detail
    [claimed] = world.claim_customer(known, engagement_ids=[SECURITY])
    error = refused(lambda: world.add(engagement_ids=[SECURITY]), Conflict)
    assert error.extra["existing_claim_id"] == claimed.claim_id
    assert_all_counters_match(world.view)


def test_limits_hold_for_claims_as_for_adds(world: MemoryLifecycle, known: str) -> None:
    theirs = world.add(NORTHWIND, engagement_ids=[SECURITY])  # the Security workshop allows one active claim
    error = refused(lambda: world.claim_customer(known, engagement_ids=[SECURITY]), Conflict)
    assert error.code == "active_claim_limit_reached"
    assert "existing_claim_id" not in error.extra
    assert theirs.claim_id not in error.detail
    world.cancel(theirs.claim_id, NORTHWIND)
    assert world.claim_customer(known, engagement_ids=[SECURITY])[0].state is ClaimState.PENDING_CONSENT


def test_a_lapsed_claim_of_the_partner_is_expired_by_the_next_claim(world: MemoryLifecycle, known: str) -> None:
    [first] = world.claim_customer(known, engagement_ids=[SECURITY])
    world.at(NOW + 30 * DAY)
    [second] = world.claim_customer(known, engagement_ids=[SECURITY])
    assert world.stored(first.claim_id).state is ClaimState.EXPIRED
    assert world.view.counter(SECURITY, known).holders == {second.claim_id}  # type: ignore[union-attr]
    assert world.view.guard(SECURITY, known, CONTOSO) == second.claim_id
    assert_all_counters_match(world.view)


@pytest.mark.parametrize(
    ("fields", "error", "code"),
    [
        ({"engagement_ids": [LEGACY]}, RuleViolation, "engagement_closed"),
        ({"engagement_ids": [AI], "hours": 20}, RuleViolation, "identifier_type_not_accepted"),
        ({"engagement_ids": [SECURITY], "location_id": CONTOSO_SEATTLE}, RuleViolation, "location_not_enrolled"),
        ({"engagement_ids": [SECURITY], "location_id": NORTHWIND_DUBLIN}, ValidationFailed, "validation_error"),
        ({"engagement_ids": ["e-unknown"]}, ValidationFailed, "validation_error"),
        ({"engagement_ids": [SECURITY, SECURITY]}, ValidationFailed, "validation_error"),
        ({"engagement_ids": [SECURITY], "hours": 10}, ValidationFailed, "validation_error"),
    ],
)
def test_claims_are_checked_like_adds(
    world: MemoryLifecycle, known: str, fields: dict[str, Any], error: type[DomainError], code: str
) -> None:
    before = claims_and_counters(world)
    assert refused(lambda: world.claim_customer(known, **fields), error).code == code
    assert claims_and_counters(world) == before


def test_claiming_needs_an_incentives_role(world: MemoryLifecycle, known: str) -> None:
    command = ClaimCustomer.model_validate(
        {"friendly_name": "x", "location_id": "1234567", "engagement_ids": [SECURITY]}
    )
    for roles in ({"referral_admin"}, {"mci_operations"}, set()):
        who = Principal(CONTOSO, frozenset(roles), "u")
        refused(lambda w=who: world.nominations.claim_customer(w, known, command), Forbidden)


def test_a_known_opportunity_is_claimed_with_hours_and_a_proposed_payment(world: MemoryLifecycle) -> None:
    msx = {"identifier": {"type": "msx_opportunity_id", "value": "7-ABC123XYZ"}, "engagement_ids": [AI], "hours": 40}
    first = world.add(**msx)
    world.accept(first.claim_id)
    assert world.claims.get_known_customer(CONTOSO, RELECLOUD) is not None
    world.cancel(first.claim_id)
    error = refused(lambda: world.claim_customer(RELECLOUD, engagement_ids=[AI]), ValidationFailed)
    assert error.errors[0].field == "hours"
    [claim] = world.claim_customer(RELECLOUD, engagement_ids=[AI], hours=150)
    # min(150 h x 150 USD, 25000 USD cap, 10% of the 180000 USD opportunity)
    assert (claim.hours, claim.proposed_payment_usd) == (150, Decimal(18000))
    assert claim.origin is Origin.CLAIMED


# ---------------------------------------------------------------- the identifiers a known customer keeps (issue 12.12)

DOMAIN_ONLY = "e-domain-only"


def accept_only_domain(world: MemoryLifecycle) -> None:
    """An engagement that accepts only ``domain``, open to Contoso Madrid."""
    data = demo_json()
    engagement = {**next(e for e in data["engagements"] if e["engagement_id"] == SECURITY)}
    engagement.update(engagement_id=DOMAIN_ONLY, name="Domain only", identifier_types=["domain"])
    location = next(loc for loc in data["locations"] if loc["location_id"] == CONTOSO_MADRID)
    location["eligible_engagements"] = [*location["eligible_engagements"], DOMAIN_ONLY]
    world.reference.save(ReferenceData.model_validate({"engagements": [engagement], "locations": [location]}))


def test_a_known_customer_keeps_every_identifier_it_was_checked_with(world: MemoryLifecycle, known: str) -> None:
    [customer] = world.claims.list_known_customers(CONTOSO)
    assert customer.customer_id == KEY  # the checked identifier stays the key (rule 3)
    assert customer.identifiers == (KEY, "domain:fabrikam.com")


def test_a_customer_added_by_domain_is_claimed_for_an_engagement_that_accepts_only_domain(
    world: MemoryLifecycle, known: str
) -> None:
    accept_only_domain(world)
    [claim] = world.claim_customer(known, engagement_ids=[DOMAIN_ONLY])
    assert claim.identifier.model_dump() == {
        "type": "domain",
        "value": "fabrikam.com",
        "resolved_tenant_id": FABRIKAM_TENANT,
    }
    assert claim.customer_key == KEY  # limits and uniqueness still on the tenant
    assert claim.origin is Origin.CLAIMED
    assert world.view.counter(DOMAIN_ONLY, KEY).active_count == 1  # type: ignore[union-attr]
    [other] = world.claim_customer(known, engagement_ids=[SECURITY])  # accepts the tenant: claimed with it
    assert (other.identifier.type.value, other.identifier.value, other.customer_key) == (
        "tenant_id",
        FABRIKAM_TENANT,
        KEY,
    )


def test_an_identifier_the_customer_was_never_checked_with_is_still_refused(world: MemoryLifecycle) -> None:
    """Known by tenant id only: an engagement that accepts only domain is not open to it."""
    world.granted(
        identifier={"type": "tenant_id", "value": FABRIKAM_TENANT},
        customer_contact={"name": "Ana", "email": "ana@fabrikam.com", "language": "es"},
    )
    accept_only_domain(world)
    error = refused(lambda: world.claim_customer(KEY, engagement_ids=[DOMAIN_ONLY]), RuleViolation)
    assert error.code == "identifier_type_not_accepted"


def test_the_customers_page_offers_a_domain_only_engagement_to_a_customer_added_by_domain(
    world: MemoryLifecycle, known: str
) -> None:
    """Rule 21 agrees with the claim: what can be claimed is listed as eligible, with the claim action."""
    accept_only_domain(world)
    items = world.page.page(principal(), DOMAIN_ONLY, Tab.ELIGIBLE, None, 25).items
    assert [(i.kind, i.customer_id, i.actions, i.reasons) for i in items] == [
        ("known_customer", KEY, [Action.CLAIM_CUSTOMER], [])
    ]
    assert world.page.page(principal(), DOMAIN_ONLY, Tab.INELIGIBLE, None, 25).items == []


def test_consent_given_again_through_the_tenant_keeps_the_domain(world: MemoryLifecycle, known: str) -> None:
    world.granted(
        engagement_ids=[SECURITY],
        identifier={"type": "tenant_id", "value": FABRIKAM_TENANT},
        customer_contact={"name": "Ana", "email": "ana@fabrikam.com", "language": "es"},
    )
    [customer] = world.claims.list_known_customers(CONTOSO)
    assert customer.identifiers == (KEY, "domain:fabrikam.com")
    accept_only_domain(world)
    [claim] = world.claim_customer(known, engagement_ids=[DOMAIN_ONLY])
    assert (claim.identifier.type.value, claim.customer_key) == ("domain", KEY)
