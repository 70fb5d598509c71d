"""POST /eligibility-checks: the engagements a location may nominate a customer for, and why not."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from mci.domain.commands import EligibilityCheck
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, EligibilityResponse, ok, problem_responses
from mci.wiring import services

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
    return EligibilityResponse.of(services().nominations.preview(principal(router), check))
