"""POST /known-customers/{customer_id}/claims: claim a known customer for one or more engagements (rule 9)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.commands import ClaimCustomer
from mci.http.claim_actions import claims_created
from mci.http.idempotency import DECLARES_KEY
from mci.http.resolver import handle, new_resolver
from mci.http.schemas import PARTNER, ClaimsResponse, ok, problem_responses
from mci.snapstart import on_snapshot
from mci.wiring import nominations

app = new_resolver()


@app.post(
    "/known-customers/<customer_id>/claims",
    operation_id="claimCustomer",
    tags=[PARTNER],
    summary="Claim a known customer for one or more engagements",
    openapi_extensions=DECLARES_KEY,
    responses={
        201: ok(ClaimsResponse, "The claims, one per engagement"),
        **problem_responses(401, 403, 404, 409, 413, 415, 422, 503),
    },
)
def claim_customer(customer_id: str, command: Annotated[ClaimCustomer, Body()]) -> Response[dict[str, Any]]:
    return claims_created(
        app,
        "claim_customer",
        {"customer_id": customer_id, **command.model_dump(mode="json")},
        lambda caller: nominations().claim_customer(caller, customer_id, command),
    )


on_snapshot(app, nominations)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
