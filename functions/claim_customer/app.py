"""POST /known-customers/{customer_id}/claims: claim a known customer for one or more engagements (rule 9)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.commands import ClaimCustomer
from mci.http.idempotency import DECLARES_KEY, HEADER, once
from mci.http.resolver import handle, new_resolver, principal
from mci.http.schemas import PARTNER, ClaimsResponse, ClaimView, dump, ok, problem_responses
from mci.wiring import services

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
    caller = principal(app)
    # API Gateway passes the path on as sent, and clients percent-encode the id's colon (tenant_id%3A...)
    customer_id = unquote(customer_id)

    def run() -> dict[str, Any]:
        claims = services().nominations.claim_customer(caller, customer_id, command)
        return dump(ClaimsResponse(claims=[ClaimView.of(c) for c in claims]))

    body = once(
        app.current_event.headers.get(HEADER),
        partner_id=caller.partner_id,
        operation="claim_customer",
        body={"customer_id": customer_id, **command.model_dump(mode="json")},
        run=run,
        context=app.lambda_context,
    )
    return Response(status_code=201, content_type="application/json", body=body)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
