"""POST /claims/{claim_id}/consent-requests: send or resend the consent email (rules 13-14)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.commands import ConsentRequest
from mci.http.idempotency import HEADER, once
from mci.http.resolver import handle, new_resolver, principal
from mci.http.schemas import ClaimView, dump, ok, problem_responses
from mci.wiring import consent_flow

app = new_resolver()


@app.post(
    "/claims/<claim_id>/consent-requests",
    summary="Send, or resend, the consent email of a claim",
    responses={
        200: ok(ClaimView, "The claim after the request"),
        **problem_responses(401, 403, 404, 409, 410, 413, 422, 503),
    },
)
def request_consent(claim_id: str, command: Annotated[ConsentRequest, Body()]) -> dict[str, Any]:
    caller = principal(app)
    return once(
        app.current_event.headers.get(HEADER),
        partner_id=caller.partner_id,
        operation="request_consent",
        body={"claim_id": claim_id, **command.model_dump(mode="json")},
        run=lambda: dump(ClaimView.of(consent_flow().request(caller, claim_id, command))),
        context=app.lambda_context,
    )


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
