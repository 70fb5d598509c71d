"""What a partner asks for: the bodies of the requests, validated before any rule runs."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, StringConstraints

from mci.domain.claims import CustomerContact, PartnerContact
from mci.domain.identifiers import IdentifierType
from mci.domain.money import PositiveUsd
from mci.domain.reference import EngagementId, LocationId
from mci.domain.text import MultiLine, SingleLine

FriendlyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), SingleLine]
# Rule 28: a reason of a cancellation or review may have line breaks; the tenant mismatch reason may not.
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), MultiLine]
MismatchReason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), SingleLine]
MAX_ENGAGEMENTS_PER_REQUEST = 10


class Command(BaseModel):
    """Strict (rule 27): a JSON string is never a number or a boolean. Enum values arrive as JSON text, so
    enum fields are validated by value (``Strict(False)``); amounts check their own type (mci.domain.money). An
    error names the field, never quotes the value: a body holds contacts' data."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, hide_input_in_errors=True)


class IdentifierInput(Command):
    type: Annotated[IdentifierType, Strict(False)]
    value: Annotated[str, StringConstraints(min_length=1, max_length=253)]


class AddCustomer(Command):
    """Rule 7: add a customer to one or more engagements."""

    friendly_name: FriendlyName
    location_id: LocationId
    identifier: IdentifierInput
    tenant_mismatch_reason: MismatchReason | None = None
    engagement_ids: list[EngagementId] = Field(min_length=1, max_length=MAX_ENGAGEMENTS_PER_REQUEST)
    hours: StrictInt | None = Field(default=None, ge=1, le=10_000)
    customer_contact: CustomerContact
    partner_contact: PartnerContact


class EligibilityCheck(Command):
    """Rule 6: preview which engagements a customer may be nominated for."""

    location_id: LocationId
    identifier: IdentifierInput
    customer_email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] | None = None


class PaymentQuoteRequest(Command):
    """Rule 8: the proposed payment of a variable-payment claim, before adding it."""

    engagement_id: EngagementId
    location_id: LocationId
    msx_opportunity_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    hours: StrictInt = Field(ge=1, le=10_000)


class ConsentRequest(Command):
    """Rules 13-14: the first request fixes the deal size; a resend may update contacts."""

    deal_size_usd: PositiveUsd | None = None
    disclaimer_accepted: StrictBool | None = None
    customer_contact: CustomerContact | None = None
    partner_contact: PartnerContact | None = None


class Submission(Command):
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), MultiLine] | None = None


class Cancellation(Command):
    reason: Reason


class ReviewDecision(StrEnum):
    COMPLETE = "complete"
    REJECT = "reject"


class Review(Command):
    """Operations complete or reject a submitted claim, always with a reason (rule 19)."""

    decision: Annotated[ReviewDecision, Strict(False)]
    reason: Reason


class ClaimCustomer(Command):
    """Rule 9: claim a known customer; contacts default to those of its latest claim."""

    friendly_name: FriendlyName
    location_id: LocationId
    engagement_ids: list[EngagementId] = Field(min_length=1, max_length=MAX_ENGAGEMENTS_PER_REQUEST)
    hours: StrictInt | None = Field(default=None, ge=1, le=10_000)
    customer_contact: CustomerContact | None = None
    partner_contact: PartnerContact | None = None
