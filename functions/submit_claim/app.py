"""POST /claims/{claim_id}/submission: Submit a consented claim before its submission deadline."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.commands import Submission
from mci.http.claim_actions import claim_action, claim_action_route
from mci.http.resolver import handle, new_resolver
from mci.http.schemas import PARTNER
from mci.snapstart import on_snapshot
from mci.wiring import lifecycle

app = new_resolver()


@app.post(
    "/claims/<claim_id>/submission",
    operation_id="submitClaim",
    tags=[PARTNER],
    summary="Submit a consented claim before its submission deadline",
    **claim_action_route("The claim after the change", 410),
)
def submit_claim(claim_id: str, command: Annotated[Submission, Body()]) -> dict[str, Any]:
    return claim_action(app, "submit_claim", claim_id, command, lifecycle().submit)


on_snapshot(app, lifecycle)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
