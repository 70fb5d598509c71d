"""GET /engagements: the engagements open to the caller's partner today."""

from __future__ import annotations

from mci.domain.catalogue import open_engagements
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, EngagementsResponse, ok, problem_responses
from mci.wiring import services

router = new_router()


@router.get(
    "/engagements",
    operation_id="listEngagements",
    tags=[PARTNER],
    summary="Engagements open to the caller",
    responses={200: ok(EngagementsResponse, "Open engagements"), **problem_responses(401, 403, 503)},
)
def list_engagements() -> EngagementsResponse:
    runtime = services()
    items = open_engagements(runtime.reference, principal(router), runtime.clock.now().date())
    return EngagementsResponse(items=items)
