"""Reference data loaded by programme operations: engagements, locations, customers and domains."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mci.domain.errors import ValidationFailed
from mci.domain.identifiers import (
    FIXED_PAYMENT_TYPES,
    VARIABLE_PAYMENT_TYPES,
    Identifier,
    IdentifierType,
    normalise_domain,
    parse_identifier,
)
from mci.domain.money import PositiveUsd, Share, Usd
from mci.domain.numbers import WholeNumber
from mci.domain.text import SingleLine

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine]
EngagementId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
LocationId = Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")]
PartnerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40), SingleLine]


class Strict(BaseModel):
    # Responses dump these whole: their response schemas require every field (requests keep the defaults). Uploaded
    # and stored records: an error names the field, never quotes the value (it may reach a log line).
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True, hide_input_in_errors=True
    )


class PaymentType(StrEnum):
    FIXED = "fixed"
    VARIABLE = "variable"


class Criteria(Strict):
    """Conditions over the customer record; an absent list means any value."""

    segments: list[Code] | None = Field(default=None, max_length=50)
    countries: list[Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]] | None = Field(
        default=None, max_length=250
    )
    min_opportunity_value_usd: Usd | None = None


class ReferralSettings(Strict):
    enabled: StrictBool = False
    # The schema's default as the wire carries it (a JSON number, rule 27), in requests and responses alike:
    # pydantic would write the Decimal as the text "0" in the request schema only and split the model in two.
    min_deal_size_usd: Usd = Field(default=Decimal(0), json_schema_extra={"default": 0})


class PaymentRules(Strict):
    """How a variable-payment engagement prices a claim (rule 8)."""

    hourly_rate_usd: PositiveUsd
    min_hours: WholeNumber = Field(ge=1, le=10_000)
    max_hours: WholeNumber = Field(ge=1, le=10_000)
    max_payment_usd: PositiveUsd
    max_opportunity_share: Share

    @model_validator(mode="after")
    def _hours_ordered(self) -> Self:
        if self.min_hours > self.max_hours:
            raise ValueError("min_hours must not exceed max_hours")
        return self


class Engagement(Strict):
    engagement_id: EngagementId
    name: Name
    payment_type: PaymentType
    identifier_types: list[IdentifierType] = Field(min_length=1, max_length=5)
    consent_window_days: WholeNumber = Field(default=30, ge=1, le=365)
    submission_window_days: WholeNumber = Field(default=90, ge=1, le=730)
    max_active_claims_per_customer: WholeNumber = Field(default=1, ge=1, le=50)
    criteria: Criteria = Field(default_factory=Criteria)
    opens_on: date
    closes_on: date
    referral: ReferralSettings = Field(default_factory=ReferralSettings)
    payment_rules: PaymentRules | None = None

    @model_validator(mode="after")
    def _payment_consistent(self) -> Self:
        accepted = set(self.identifier_types)
        if self.payment_type is PaymentType.FIXED:
            if not accepted <= FIXED_PAYMENT_TYPES:
                raise ValueError("fixed payment accepts only domain, tenant_id, tpid and subscription_id")
            if self.payment_rules is not None:
                raise ValueError("payment_rules apply to variable payment only")
        else:
            if accepted != VARIABLE_PAYMENT_TYPES:
                raise ValueError("variable payment accepts msx_opportunity_id only")
            if self.payment_rules is None:
                raise ValueError("variable payment needs payment_rules")
        if self.opens_on > self.closes_on:
            raise ValueError("opens_on must not be after closes_on")
        return self

    def is_open(self, today: date) -> bool:
        return self.opens_on <= today <= self.closes_on


class Location(Strict):
    """A Microsoft AI Cloud Partner Program location of a partner."""

    location_id: LocationId
    partner_id: PartnerId
    name: Name
    enrolled_in_mci: StrictBool
    eligible_engagements: list[EngagementId] = Field(default_factory=list, max_length=500)


class CustomerRecord(Strict):
    """Attributes of one customer identifier, as the programme knows them."""

    identifier_type: IdentifierType
    value: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    name: Name
    segment: Code
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    cosell_allowed: StrictBool = False
    opportunity_value_usd: Usd | None = None

    @field_validator("value")
    @classmethod
    def _normalise(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("identifier_type")
        if kind is None:  # already refused; no second error for the same record
            return value
        return _normal_value(kind.value, value)

    @property
    def identifier(self) -> Identifier:
        return Identifier(self.identifier_type, self.value)


class DomainRecord(Strict):
    """Maps a customer's domain to its tenant."""

    domain: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    tenant_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]

    @field_validator("domain")
    @classmethod
    def _normal_domain(cls, value: str) -> str:
        domain = normalise_domain(value)
        if domain is None:
            raise ValueError("is not a valid domain name")
        return domain

    @field_validator("tenant_id")
    @classmethod
    def _normal_tenant(cls, value: str) -> str:
        return _normal_value(IdentifierType.TENANT_ID.value, value)


def _normal_value(type_: str, value: str) -> str:
    """Normal form of an identifier value; a ValueError so pydantic names the field with its position."""
    try:
        return parse_identifier(type_, value).value
    except ValidationFailed as error:
        raise ValueError(error.errors[0].message) from None


class ReferenceData(Strict):
    """One load of reference data; each list optional, records upserted by id."""

    engagements: list[Engagement] = Field(default_factory=list, max_length=1000)
    locations: list[Location] = Field(default_factory=list, max_length=5000)
    customers: list[CustomerRecord] = Field(default_factory=list, max_length=5000)
    domains: list[DomainRecord] = Field(default_factory=list, max_length=5000)
