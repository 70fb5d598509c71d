"""GET /engagements: the engagements open to the caller's partner today."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.catalogue import open_engagements
from mci.http.resolver import handle, new_resolver, principal
from mci.http.schemas import PARTNER, EngagementsResponse, ok, problem_responses
from mci.wiring import services

app = new_resolver()


@app.get(
    "/engagements",
    operation_id="listEngagements",
    tags=[PARTNER],
    summary="Engagements open to the caller",
    responses={200: ok(EngagementsResponse, "Open engagements"), **problem_responses(401, 403, 503)},
)
def list_engagements() -> EngagementsResponse:
    runtime = services()
    items = open_engagements(runtime.reference, principal(app), runtime.clock.now().date())
    return EngagementsResponse(items=items)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
