"""POST /claims/{claim_id}/consent-requests: send or resend the consent email (rules 13-14)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.commands import ConsentRequest
from mci.http.claim_actions import claim_action, claim_action_route
from mci.http.resolver import handle, new_resolver
from mci.http.schemas import PARTNER
from mci.snapstart import on_snapshot
from mci.wiring import consent_requesting

app = new_resolver()


@app.post(
    "/claims/<claim_id>/consent-requests",
    operation_id="requestConsent",
    tags=[PARTNER],
    summary="Send, or resend, the consent email of a claim",
    **claim_action_route("The claim after the request", 410),
)
def request_consent(claim_id: str, command: Annotated[ConsentRequest, Body()]) -> dict[str, Any]:
    return claim_action(app, "request_consent", claim_id, command, consent_requesting().request)


on_snapshot(app, consent_requesting)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
