"""Rules 25-26: the partner-led referral a consent request creates, its co-sell upgrade and its closure."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from mci.domain.claims import Claim, ClaimState
from mci.domain.errors import NotFound
from mci.domain.money import Usd
from mci.domain.principal import Principal, Role
from mci.domain.reference import CustomerRecord, Engagement

REFERRAL_READERS = frozenset({Role.REFERRAL_ADMIN})


class ReferralType(StrEnum):
    PARTNER_LED = "partner_led"
    CO_SELL = "co_sell"


class ReferralStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class ReferralCustomer(BaseModel):
    # GET /referrals/{id} dumps it whole: its response schema requires every field. Read from stored items: an error
    # names the field, never quotes the customer's name.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True, hide_input_in_errors=True
    )

    identifier_type: str
    identifier_value: str
    name: str


class ReferralBase(BaseModel):
    # GET /referrals/{id} dumps it whole (mci.http.schemas.Referral): its response schema requires every field. Read
    # from stored items: an error names the field, never quotes the value.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True, hide_input_in_errors=True
    )

    referral_id: str
    claim_id: str
    partner_id: str
    engagement_id: str
    type: ReferralType
    status: ReferralStatus
    deal_size_usd: Usd
    customer: ReferralCustomer
    closed_with_state: ClaimState | None = None
    created_at: datetime
    updated_at: datetime


class Referral(ReferralBase):
    """The referral as stored: what its partner reads, and the request that created it, then the one that upgraded
    it (its events' correlation id), for operators."""

    correlation_id: str | None = None


def referral_for(
    claim: Claim,
    engagement: Engagement,
    deal_size_usd: Decimal,
    referral_id: str,
    now: datetime,
    *,
    correlation_id: str | None = None,
) -> Referral | None:
    """Rule 25: on the first consent request, when referrals are on and the deal is big enough."""
    settings = engagement.referral
    if not settings.enabled or deal_size_usd < settings.min_deal_size_usd:
        return None
    type_, _, value = claim.customer_key.partition(":")
    return Referral(
        referral_id=referral_id,
        claim_id=claim.claim_id,
        partner_id=claim.partner_id,
        engagement_id=claim.engagement_id,
        type=ReferralType.PARTNER_LED,
        status=ReferralStatus.ACTIVE,
        deal_size_usd=deal_size_usd,
        customer=ReferralCustomer(identifier_type=type_, identifier_value=value, name=claim.friendly_name),
        created_at=now,
        updated_at=now,
        correlation_id=correlation_id,
    )


def upgraded(
    referral: Referral, customer: CustomerRecord | None, now: datetime, correlation_id: str | None = None
) -> Referral | None:
    """Rule 26: consent granted and the customer allows co-sell: the referral becomes co_sell."""
    if customer is None or not customer.cosell_allowed or referral.type is ReferralType.CO_SELL:
        return None
    return referral.model_copy(
        update={"type": ReferralType.CO_SELL, "updated_at": now, "correlation_id": correlation_id}
    )


def read_referral(found: Referral | None, principal: Principal) -> Referral:
    """Only referral_admin of the same partner; another partner's referral is answered as missing."""
    principal.require_any(REFERRAL_READERS, "Reading a referral")
    if found is None or found.partner_id != principal.partner_id:
        raise NotFound("Referral")
    return found
