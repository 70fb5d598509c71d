"""POST /eligibility-checks: the engagements a location may nominate a customer for, and why not."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.commands import EligibilityCheck
from mci.http.resolver import handle, new_resolver, principal
from mci.http.schemas import PARTNER, EligibilityResponse, ok, problem_responses
from mci.wiring import services

app = new_resolver()


@app.post(
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
    return EligibilityResponse.of(services().nominations.preview(principal(app), check))


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
