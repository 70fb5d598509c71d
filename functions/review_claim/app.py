"""POST /ops/claims/{claim_id}/review: Operations complete or reject a submitted claim."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.commands import Review
from mci.http.claim_actions import claim_action, claim_action_route
from mci.http.resolver import handle, new_resolver
from mci.http.schemas import OPERATIONS
from mci.snapstart import on_snapshot
from mci.wiring import lifecycle

app = new_resolver()


@app.post(
    "/ops/claims/<claim_id>/review",
    operation_id="reviewClaim",
    tags=[OPERATIONS],
    summary="Operations complete or reject a submitted claim",
    **claim_action_route("The claim after the change"),
)
def review_claim(claim_id: str, command: Annotated[Review, Body()]) -> dict[str, Any]:
    return claim_action(app, "review_claim", claim_id, command, lifecycle().review)


on_snapshot(app, lifecycle)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
