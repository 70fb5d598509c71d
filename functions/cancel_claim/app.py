"""POST /claims/{claim_id}/cancellation: Cancel an active claim that is not submitted."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.commands import Cancellation
from mci.http.claim_actions import claim_action, claim_action_route
from mci.http.resolver import handle, new_resolver
from mci.http.schemas import PARTNER
from mci.snapstart import on_snapshot
from mci.wiring import lifecycle

app = new_resolver()


@app.post(
    "/claims/<claim_id>/cancellation",
    operation_id="cancelClaim",
    tags=[PARTNER],
    summary="Cancel an active claim that is not submitted",
    **claim_action_route("The claim after the change"),
)
def cancel_claim(claim_id: str, command: Annotated[Cancellation, Body()]) -> dict[str, Any]:
    return claim_action(app, "cancel_claim", claim_id, command, lifecycle().cancel)


on_snapshot(app, lifecycle)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
