"""Rules 25-26 on the in-memory fakes: the partner-led referral a first consent request creates, its co-sell
upgrade when the customer accepts, its closure when the claim ends, and who may read it.

Demo data: e-azure-migrate has referrals on from a 10000 USD deal; e-security-workshop has them off.
Fabrikam's record allows co-sell; Tailspin's does not (made eligible for e-azure-migrate here).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from mci.adapters.memory import MemoryReferenceRepository
from mci.domain.claims import Claim, ClaimState, Decision
from mci.domain.errors import Forbidden, NotFound
from mci.domain.principal import Principal
from mci.domain.reference import ReferenceData
from mci.domain.referrals import Referral, ReferralStatus, ReferralType, read_referral, referral_for, upgraded
from tests.support.consent import token_in
from tests.support.memory_lifecycle import MemoryLifecycle
from tests.support.reference import (
    CONTOSO,
    FABRIKAM_TENANT,
    MIGRATE,
    NORTHWIND,
    NOW,
    SECURITY,
    TAILSPIN_TENANT,
    demo_data,
    demo_json,
)

HOUR = timedelta(hours=1)
TAILSPIN = {
    "identifier": {"type": "domain", "value": "tailspintoys.com"},
    "friendly_name": "Tailspin migration",
    "customer_contact": {"name": "Lee Chen", "email": "lee@tailspintoys.com", "language": "en"},
}


@pytest.fixture
def world() -> MemoryLifecycle:
    return MemoryLifecycle()


def tailspin_world() -> MemoryLifecycle:
    """The demo data with Tailspin (co-sell not allowed) in a segment e-azure-migrate accepts."""
    data = demo_json()
    for customer in data["customers"]:
        if customer["value"] == TAILSPIN_TENANT:
            assert customer["cosell_allowed"] is False
            customer["segment"] = "SMB"
    return MemoryLifecycle(reference=MemoryReferenceRepository(ReferenceData.model_validate(data)))


def accept_last_link(world: MemoryLifecycle) -> None:
    """The customer accepts through the link of the last consent email."""
    world.decisions.decide(token_in(world.mailer.sent[-1].text), Decision.ACCEPT)


def referral_of(world: MemoryLifecycle, claim_id: str) -> Referral:
    referral_id = world.stored(claim_id).referral_id
    assert referral_id is not None, "the claim has no referral"
    referral = world.claims.get_referral(referral_id)
    assert referral is not None
    return referral


def requested(world: MemoryLifecycle, deal: Any = 25000, **overrides: Any) -> Claim:
    claim = world.add(**overrides)
    return world.request(claim.claim_id, deal_size_usd=deal, disclaimer_accepted=True)


def reader(partner_id: str = CONTOSO, *roles: str) -> Principal:
    return Principal(partner_id, frozenset(roles or {"referral_admin"}), user_id="u-9")


# ---------------------------------------------------------------- creation (rule 25)


def test_the_first_consent_request_creates_a_partner_led_referral_named_on_the_claim(world: MemoryLifecycle) -> None:
    claim = requested(world)

    referral = referral_of(world, claim.claim_id)
    assert claim.referral_id == referral.referral_id
    assert referral.claim_id == claim.claim_id
    assert (referral.partner_id, referral.engagement_id) == (CONTOSO, MIGRATE)
    assert (referral.type, referral.status) == (ReferralType.PARTNER_LED, ReferralStatus.ACTIVE)
    assert referral.deal_size_usd == Decimal(25000) == claim.deal_size_usd
    assert (referral.customer.identifier_type, referral.customer.identifier_value) == ("tenant_id", FABRIKAM_TENANT)
    assert referral.created_at == referral.updated_at == NOW
    assert referral.closed_with_state is None
    assert len(world.claims.referrals) == 1


@pytest.mark.parametrize(
    ("deal", "created"),
    [("9999.99", False), ("10000", True), ("10000.00", True), ("10000.01", True), ("1", False), ("250000", True)],
)
def test_a_referral_needs_the_engagements_minimum_deal_size(world: MemoryLifecycle, deal: str, created: bool) -> None:
    claim = requested(world, deal=Decimal(deal))

    assert claim.state is ClaimState.CONSENT_REQUESTED
    assert (claim.referral_id is not None) is created
    assert len(world.claims.referrals) == int(created)


def test_an_engagement_without_referrals_never_creates_one(world: MemoryLifecycle) -> None:
    claim = requested(world, deal=1_000_000, engagement_ids=[SECURITY])

    assert claim.referral_id is None
    assert world.claims.referrals == {}


def test_a_resend_creates_no_second_referral(world: MemoryLifecycle) -> None:
    claim = requested(world)
    first = referral_of(world, claim.claim_id)
    world.clock.advance(HOUR)

    again = world.request(claim.claim_id, deal_size_usd=25000)

    assert again.consent_requests.count == 2
    assert again.referral_id == first.referral_id
    assert list(world.claims.referrals.values()) == [first]


def test_a_claim_below_the_minimum_never_gets_a_referral_later(world: MemoryLifecycle) -> None:
    claim = requested(world, deal=5000)
    world.clock.advance(HOUR)
    world.request(claim.claim_id)
    accept_last_link(world)

    assert world.stored(claim.claim_id).referral_id is None
    assert world.claims.referrals == {}


# ---------------------------------------------------------------- co-sell upgrade (rule 26)


def test_consent_granted_upgrades_the_referral_to_co_sell_when_the_customer_allows_it(world: MemoryLifecycle) -> None:
    claim = requested(world)
    created = referral_of(world, claim.claim_id)
    world.clock.advance(HOUR)

    accept_last_link(world)

    referral = referral_of(world, claim.claim_id)
    assert world.stored(claim.claim_id).state is ClaimState.CONSENT_GRANTED
    assert (referral.type, referral.status) == (ReferralType.CO_SELL, ReferralStatus.ACTIVE)
    assert referral.created_at == created.created_at == NOW
    assert referral.updated_at == NOW + HOUR
    assert referral.model_dump(exclude={"type", "updated_at"}) == created.model_dump(exclude={"type", "updated_at"})


def test_no_upgrade_when_the_customer_record_does_not_allow_co_sell() -> None:
    world = tailspin_world()
    claim = requested(world, **TAILSPIN)
    created = referral_of(world, claim.claim_id)
    assert created.customer.identifier_value == TAILSPIN_TENANT

    accept_last_link(world)

    assert world.stored(claim.claim_id).state is ClaimState.CONSENT_GRANTED
    assert referral_of(world, claim.claim_id) == created  # untouched: still partner_led, no write


def test_a_declined_consent_never_upgrades(world: MemoryLifecycle) -> None:
    claim = world.declined()
    referral = referral_of(world, claim.claim_id)
    assert referral.type is ReferralType.PARTNER_LED


# ---------------------------------------------------------------- closure (rule 25)


def closed_with(referral: Referral, state: ClaimState, claim: Claim) -> None:
    assert referral.status is ReferralStatus.CLOSED
    assert referral.closed_with_state is state
    assert referral.updated_at == claim.updated_at


def test_a_declined_claim_closes_its_referral(world: MemoryLifecycle) -> None:
    claim = world.declined()
    assert claim.state is ClaimState.CONSENT_DECLINED
    closed_with(referral_of(world, claim.claim_id), ClaimState.CONSENT_DECLINED, claim)


@pytest.mark.parametrize("granted", [False, True], ids=["while requested", "once granted (co_sell)"])
def test_a_cancelled_claim_closes_its_referral_keeping_its_type(world: MemoryLifecycle, granted: bool) -> None:
    claim = world.granted() if granted else requested(world)
    world.clock.advance(HOUR)

    cancelled = world.cancel(claim.claim_id)

    referral = referral_of(world, claim.claim_id)
    closed_with(referral, ClaimState.CANCELLED, cancelled)
    assert referral.type is (ReferralType.CO_SELL if granted else ReferralType.PARTNER_LED)


@pytest.mark.parametrize(
    ("granted", "days"), [(False, 31), (True, 91)], ids=["consent deadline", "submission deadline"]
)
def test_an_expired_claim_closes_its_referral(world: MemoryLifecycle, granted: bool, days: int) -> None:
    claim = world.granted() if granted else requested(world)
    world.clock.advance(timedelta(days=days))

    report = world.sweep()

    expired = world.stored(claim.claim_id)
    assert report.expired == 1
    assert expired.state is ClaimState.EXPIRED
    closed_with(referral_of(world, claim.claim_id), ClaimState.EXPIRED, expired)


@pytest.mark.parametrize(("decision", "state"), [("complete", ClaimState.COMPLETED), ("reject", ClaimState.REJECTED)])
def test_a_reviewed_claim_closes_its_referral(world: MemoryLifecycle, decision: str, state: ClaimState) -> None:
    claim = world.submitted()
    assert referral_of(world, claim.claim_id).status is ReferralStatus.ACTIVE  # submitting is no end

    reviewed = world.review(claim.claim_id, decision)

    closed_with(referral_of(world, claim.claim_id), state, reviewed)


def test_a_claim_without_a_referral_ends_without_touching_referrals(world: MemoryLifecycle) -> None:
    claim = world.add()
    world.cancel(claim.claim_id)
    assert world.claims.referrals == {}


# ---------------------------------------------------------------- reading (rule 25)


def test_only_a_referral_admin_of_the_same_partner_reads_a_referral(world: MemoryLifecycle) -> None:
    referral = referral_of(world, requested(world).claim_id)

    assert read_referral(referral, reader()) == referral
    assert read_referral(referral, reader(CONTOSO, "incentives_user", "referral_admin")) == referral
    for roles in (("incentives_user",), ("incentives_admin",), ("mci_operations",)):
        with pytest.raises(Forbidden):
            read_referral(referral, reader(CONTOSO, *roles))
    with pytest.raises(NotFound) as theirs:
        read_referral(referral, reader(NORTHWIND))
    with pytest.raises(NotFound) as unknown:
        read_referral(None, reader(NORTHWIND))
    assert (theirs.value.status, theirs.value.code, theirs.value.detail) == (
        unknown.value.status,
        unknown.value.code,
        unknown.value.detail,
    )


def test_the_role_is_checked_before_anything_is_looked_up() -> None:
    with pytest.raises(Forbidden):
        read_referral(None, reader(CONTOSO, "incentives_user"))


# ---------------------------------------------------------------- the rules as functions


def test_referral_for_and_upgraded_decide_alone(world: MemoryLifecycle) -> None:
    claim = world.add()
    engagements = {e.engagement_id: e for e in demo_data().engagements}
    fabrikam = next(c for c in demo_data().customers if c.value == FABRIKAM_TENANT)

    assert referral_for(claim, engagements[SECURITY], Decimal(10**6), "r-1", NOW) is None
    assert referral_for(claim, engagements[MIGRATE], Decimal("9999.99"), "r-1", NOW) is None
    made = referral_for(claim, engagements[MIGRATE], Decimal(10000), "r-1", NOW)
    assert made is not None
    assert made.referral_id == "r-1"

    later = NOW + HOUR
    assert upgraded(made, None, later) is None  # no customer record: no co-sell
    assert upgraded(made, fabrikam.model_copy(update={"cosell_allowed": False}), later) is None
    co_sell = upgraded(made, fabrikam, later)
    assert co_sell is not None
    assert (co_sell.type, co_sell.updated_at) == (ReferralType.CO_SELL, later)
    assert upgraded(co_sell, fabrikam, later + HOUR) is None  # once


def test_an_add_that_expires_an_overdue_claim_closes_its_referral(world: MemoryLifecycle) -> None:
    claim = requested(world)
    world.clock.advance(timedelta(days=31))

    world.add(NORTHWIND)  # the same customer and engagement: Contoso's overdue claim is expired with it

    expired = world.stored(claim.claim_id)
    assert (expired.state, expired.history[-1].actor) == (ClaimState.EXPIRED, "system")
    closed_with(referral_of(world, claim.claim_id), ClaimState.EXPIRED, expired)
