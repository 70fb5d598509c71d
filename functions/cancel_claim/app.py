"""POST /claims/{claim_id}/cancellation: Cancel an active claim that is not submitted."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.commands import Cancellation
from mci.http.idempotency import HEADER, once
from mci.http.resolver import handle, new_resolver, principal
from mci.http.schemas import ClaimView, dump, ok, problem_responses
from mci.wiring import lifecycle

app = new_resolver()


@app.post(
    "/claims/<claim_id>/cancellation",
    summary="Cancel an active claim that is not submitted",
    responses={
        200: ok(ClaimView, "The claim after the change"),
        **problem_responses(401, 403, 404, 409, 413, 422, 503),
    },
)
def cancel_claim(claim_id: str, command: Annotated[Cancellation, Body()]) -> dict[str, Any]:
    caller = principal(app)
    return once(
        app.current_event.headers.get(HEADER),
        partner_id=caller.partner_id,
        operation="cancel_claim",
        body={"claim_id": claim_id, **command.model_dump(mode="json")},
        run=lambda: dump(ClaimView.of(lifecycle().cancel(caller, claim_id, command))),
        context=app.lambda_context,
    )


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
