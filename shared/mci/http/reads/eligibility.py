"""POST /eligibility-checks: the engagements a location may nominate a customer for, and why not."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import Field

from mci.domain.commands import EligibilityCheck
from mci.domain.reference import PaymentType
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, ReasonView, View, ok, problem_responses
from mci.wiring import nominations

if TYPE_CHECKING:
    from mci.domain.nomination import Preview


class EligibleEngagement(View):
    engagement_id: str
    name: str
    payment_type: PaymentType


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


router = new_router()


@router.post(
    "/eligibility-checks",
    operation_id="checkEligibility",
    tags=[PARTNER],
    summary="Preview eligibility of a customer for every engagement",
    responses={
        200: ok(EligibilityResponse, "Eligible and ineligible engagements"),
        **problem_responses(401, 403, 413, 415, 422, 503),
    },
)
def check_eligibility(check: Annotated[EligibilityCheck, Body()]) -> EligibilityResponse:
    return EligibilityResponse.of(nominations().preview(principal(router), check))
