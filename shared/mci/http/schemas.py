"""Response shapes of the HTTP contract (SPEC §4); request bodies are the domain's commands."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field

from mci.domain.attention import AttentionReason
from mci.domain.claims import (
    Claim,
    ClaimIdentifier,
    ClaimState,
    ConsentDecision,
    ConsentEvidence,
    ConsentRequests,
    CustomerContact,
    EmailDelivery,
    EmailFailure,
    EmailStatus,
    HistoryEntryBase,
    Origin,
    PartnerContact,
)
from mci.domain.customers_page import Action, PageItemKind
from mci.domain.eligibility import ReasonCode
from mci.domain.identifiers import IdentifierType
from mci.domain.money import Share, Usd
from mci.domain.nomination import Preview
from mci.domain.ports import KnownCustomer

if TYPE_CHECKING:
    from mci.domain.attention import AttentionItem, AttentionPage
    from mci.domain.customers_page import CustomersPage, PageItem
from mci.domain.pricing import Quote
from mci.domain.reference import Engagement, Location, PaymentType, ReferenceData
from mci.domain.referrals import Referral as StoredReferral
from mci.domain.referrals import ReferralBase


class View(BaseModel):
    """A response body. ``dump`` sends every field, null or not: the schema marks each one required."""

    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)


class HistoryEntry(HistoryEntryBase):
    pass  # the stored entry without its correlation_id, so an expiry reads the same before and after the sweep


class ClaimView(View):
    """A claim as the partner sees it (SPEC §4)."""

    claim_id: str
    partner_id: str
    location_id: str
    engagement_id: str
    friendly_name: str
    identifier: ClaimIdentifier
    origin: Origin
    state: ClaimState
    customer_contact: CustomerContact
    partner_contact: PartnerContact
    tenant_mismatch_reason: str | None
    hours: int | None
    proposed_payment_usd: Usd | None
    deal_size_usd: Usd | None
    consent_deadline: datetime
    submission_deadline: datetime | None
    consent_requests: ConsentRequests
    consent_email: EmailDelivery | None
    consent_decision: ConsentDecision | None
    consent_evidence: list[ConsentEvidence] = Field(default_factory=list)
    email_failures: list[EmailFailure] = Field(
        default_factory=list,
        description="Emails that will not be sent (rule 29): refused for good by SES, or given up after retries",
    )
    referral_id: str | None
    created_at: datetime
    updated_at: datetime
    history: list[HistoryEntry]

    @classmethod
    def of(cls, claim: Claim) -> ClaimView:
        hidden: dict[str, Any] = {"customer_key": True, "version": True, "consent_token_hash": True}
        hidden["history"] = {"__all__": {"correlation_id"}}
        return cls.model_validate(claim.model_dump(exclude=hidden))


class Referral(ReferralBase):
    # The stored referral without its correlation_id (for operators: logs, events).

    @classmethod
    def of(cls, referral: StoredReferral) -> Referral:
        return cls.model_validate(referral.model_dump(exclude={"correlation_id"}))


class ClaimsResponse(View):
    claims: list[ClaimView]


class EngagementsResponse(View):
    items: list[Engagement]


class LocationsResponse(View):
    items: list[Location]


class EligibleEngagement(View):
    engagement_id: str
    name: str
    payment_type: PaymentType


class ReasonView(View):
    code: ReasonCode
    message: str
    claim_id: str | None = None


class IneligibleEngagement(View):
    engagement_id: str
    name: str
    reasons: list[ReasonView]


class EligibilityResponse(View):
    eligible: list[EligibleEngagement]
    ineligible: list[IneligibleEngagement]
    tenant_mismatch_reason_required: bool = Field(
        description="True when a tenant id does not match the contact's email tenant (rule 4)"
    )

    @classmethod
    def of(cls, preview: Preview) -> EligibilityResponse:
        return cls(
            eligible=[
                EligibleEngagement(engagement_id=e.engagement_id, name=e.name, payment_type=e.payment_type)
                for e in preview.eligible
            ],
            ineligible=[
                IneligibleEngagement(
                    engagement_id=v.engagement.engagement_id,
                    name=v.engagement.name,
                    reasons=[ReasonView(**r.as_dict()) for r in v.reasons],
                )
                for v in preview.ineligible
            ],
            tenant_mismatch_reason_required=preview.tenant_mismatch_reason_required,
        )


class QuoteBreakdown(View):
    hours: int
    hourly_rate_usd: Usd
    hours_amount_usd: Usd
    max_payment_usd: Usd
    opportunity_value_usd: Usd
    max_opportunity_share: Share
    opportunity_cap_usd: Usd
    limited_by: str = Field(description="hours, max_payment or opportunity_share: the term that set the payment")


class QuoteResponse(View):
    proposed_payment_usd: Usd
    breakdown: QuoteBreakdown

    @classmethod
    def of(cls, quote: Quote) -> QuoteResponse:
        return cls(
            proposed_payment_usd=quote.proposed_payment_usd,
            breakdown=QuoteBreakdown(
                hours=quote.hours,
                hourly_rate_usd=quote.hourly_rate_usd,
                hours_amount_usd=quote.hours_amount_usd,
                max_payment_usd=quote.max_payment_usd,
                opportunity_value_usd=quote.opportunity_value_usd,
                max_opportunity_share=quote.max_opportunity_share,
                opportunity_cap_usd=quote.opportunity_cap_usd,
                limited_by=quote.limited_by,
            ),
        )


class ReferenceDataCounts(View):
    engagements: int
    locations: int
    customers: int
    domains: int

    @classmethod
    def of(cls, data: ReferenceData) -> ReferenceDataCounts:
        """The counts a load of ``data`` writes."""
        return cls(
            engagements=len(data.engagements),
            locations=len(data.locations),
            customers=len(data.customers),
            domains=len(data.domains),
        )


class FieldProblem(View):
    field: str
    message: str
    code: str


class ServiceCode(StrEnum):
    """The codes of the domain's errors and the edge's own (tests/unit/test_openapi.py reads the code for any code
    missing here)."""

    VALIDATION_ERROR = "validation_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    INVALID_STATE = "invalid_state"
    DEADLINE_PASSED = "deadline_passed"
    DEAL_SIZE_LOCKED = "deal_size_locked"
    RESEND_LIMIT = "resend_limit"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    TENANT_MISMATCH_REASON_REQUIRED = "tenant_mismatch_reason_required"
    NOT_VARIABLE_PAYMENT = "not_variable_payment"
    OPPORTUNITY_VALUE_UNKNOWN = "opportunity_value_unknown"
    EMAIL_REJECTED = "email_rejected"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    THROTTLED = "throttled"
    DEPENDENCY_UNAVAILABLE = "dependency_unavailable"
    INTERNAL_ERROR = "internal_error"


# One enum for clients, one list in the code: the service's codes, then the eligibility reasons (ReasonCode, the
# domain's) that refuse an addition.
ProblemCode = StrEnum(  # type: ignore[misc]  # members computed: mypy sees a StrEnum of unknown members
    "ProblemCode", [(code.name, code.value) for code in (*ServiceCode, *ReasonCode)], module=__name__
)
ProblemCode.__doc__ = (
    "Every ``code`` a problem document carries: the domain's errors, the edge's, and the eligibility reason\n"
    "that refused an addition (tests/unit/test_openapi.py reads the code for any code missing here)."
)


class Problem(View):
    """RFC 9457 problem details."""

    # Written by hand (mci.http.problems), not dumped: ``errors`` comes only with invalid input.
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=False)

    type: str
    title: str
    status: int
    detail: str
    code: ProblemCode
    errors: list[FieldProblem] | None = None


# Swagger UI and generated clients group operations by these tags; every route names one (local/openapi.py
# lists them, with these descriptions, in the document).
PARTNER = "partner"
CONSENT_PAGE = "consent page"
OPERATIONS = "operations"
TAGS: dict[str, str] = {
    PARTNER: "The partner's API: engagements, eligibility, customers and their claims (partner JWT)",
    CONSENT_PAGE: "The customer's public consent page (HTML, no token: the link's token is the credential)",
    OPERATIONS: "Programme operations: reference data and claim review (operations JWT, no partner role)",
}


# A request body the resolver cannot declare from a model (the consent page's form, read by hand so a bad
# form is the HTML page again, not a JSON 422): a route passes ``openapi_extensions={REQUEST_BODY: ...}``
# and local/openapi.py makes it the operation's ``requestBody``.
REQUEST_BODY = "x-request-body"


def problem_responses(*statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI entries for the problem responses a route can give."""
    descriptions = {
        401: "No valid bearer token",
        403: "The caller lacks the role",
        404: "Unknown, or another partner's",
        409: "Conflicts with the current state",
        410: "The deadline has passed",
        413: "Body too large",
        415: "The body is not application/json",
        422: "Invalid input; `errors` names each field",
        503: "A dependency is busy; retry after Retry-After seconds",
    }
    return {
        status: {
            "description": descriptions[status],
            "content": {"application/problem+json": {"model": Problem}},
        }
        for status in statuses
    }


def ok(model: type[BaseModel], description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


def dump(model: BaseModel) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return data


class KnownIdentifier(View):
    type: IdentifierType
    value: str


class KnownCustomerView(View):
    customer_id: str = Field(description="Use in POST /known-customers/{customer_id}/claims")
    identifier: KnownIdentifier
    name: str
    last_contact: CustomerContact
    partner_contact: PartnerContact
    last_claim_id: str
    known_since: datetime
    updated_at: datetime

    @classmethod
    def of(cls, known: KnownCustomer) -> KnownCustomerView:
        return cls(
            customer_id=known.customer_id,
            identifier=KnownIdentifier(type=IdentifierType(known.identifier_type), value=known.identifier_value),
            name=known.name,
            last_contact=CustomerContact.model_validate(known.customer_contact),
            partner_contact=PartnerContact.model_validate(known.partner_contact),
            last_claim_id=known.last_claim_id,
            known_since=known.known_since,
            updated_at=known.updated_at,
        )


class KnownCustomersResponse(View):
    items: list[KnownCustomerView]


class PageItemView(View):
    kind: PageItemKind
    claim_id: str | None = None
    customer_id: str | None = None
    friendly_name: str
    customer: KnownIdentifier
    state: ClaimState | None = None
    deadline: datetime | None = Field(default=None, description="The deadline that matters now")
    days_left: int | None = None
    actions: list[Action]
    reasons: list[ReasonView] = Field(default_factory=list)
    consent_email_status: EmailStatus | None = Field(
        default=None, description="Where the claim's consent email stands: rejected or failed means it never arrived"
    )

    @classmethod
    def of(cls, item: PageItem) -> PageItemView:
        claim = item.claim
        return cls(
            kind=item.kind,
            claim_id=claim.claim_id if claim else None,
            customer_id=item.customer_id,
            friendly_name=item.friendly_name,
            customer=KnownIdentifier(type=IdentifierType(item.identifier_type), value=item.identifier_value),
            state=claim.state if claim else None,
            deadline=item.deadline,
            days_left=item.days_left,
            actions=list(item.actions),
            reasons=[ReasonView(**r.as_dict()) for r in item.reasons],
            consent_email_status=claim.consent_email.status if claim and claim.consent_email else None,
        )


class CustomersPageResponse(View):
    items: list[PageItemView]
    next_cursor: str | None
    note: str | None = None

    @classmethod
    def of(cls, page: CustomersPage) -> CustomersPageResponse:
        return cls(items=[PageItemView.of(i) for i in page.items], next_cursor=page.next_cursor, note=page.note)


class AttentionItemView(View):
    claim_id: str
    engagement_id: str
    engagement_name: str
    friendly_name: str
    identifier: KnownIdentifier
    state: ClaimState
    reason: AttentionReason = Field(
        description="consent_not_requested, consent_deadline_soon (7 days or fewer left) or not_submitted"
    )
    deadline: datetime = Field(description="The consent deadline, or the submission deadline once consented")
    days_left: int = Field(description="Whole days until the deadline, 0 on its last day")

    @classmethod
    def of(cls, item: AttentionItem) -> AttentionItemView:
        claim = item.claim
        return cls(
            claim_id=claim.claim_id,
            engagement_id=claim.engagement_id,
            engagement_name=item.engagement_name,
            friendly_name=claim.friendly_name,
            identifier=KnownIdentifier(type=claim.identifier.type, value=claim.identifier.value),
            state=claim.state,
            reason=item.reason,
            deadline=item.deadline,
            days_left=item.days_left,
        )


class AttentionResponse(View):
    items: list[AttentionItemView]
    next_cursor: str | None

    @classmethod
    def of(cls, page: AttentionPage) -> AttentionResponse:
        return cls(items=[AttentionItemView.of(i) for i in page.items], next_cursor=page.next_cursor)
