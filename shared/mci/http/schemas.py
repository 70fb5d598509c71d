"""Response shapes of the HTTP contract (SPEC §4) that more than one route answers, and the problem documents;
request bodies are the domain's commands.

A view only one read route answers lives in that route's module (``mci.http.reads``): the write functions import
this module, and with it every view here and the domain modules those views name (issue 16, item 4).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field

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
    HistoryEntryBase,
    Origin,
    PartnerContact,
)
from mci.domain.eligibility import ReasonCode
from mci.domain.identifiers import IdentifierType
from mci.domain.money import Usd
from mci.domain.reference import Engagement, Location, ReferenceData
from mci.domain.referrals import Referral as StoredReferral
from mci.domain.referrals import ReferralBase


class View(BaseModel):
    """A response body. ``dump`` sends every field, null or not: the schema marks each one required. Built from
    stored data: an error names the field, never quotes the value."""

    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True, hide_input_in_errors=True)


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
        hidden: dict[str, Any] = {"customer_key": True, "version": True}
        hidden |= {"consent_token_hash": True, "kept_token_hashes": True, "unsent_token_hash": True}
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


class ReasonView(View):
    code: ReasonCode
    message: str
    claim_id: str | None = None


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
