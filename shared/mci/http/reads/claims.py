"""GET /claims/{claim_id}: the claim with its deadlines, consent requests, email delivery and history."""

from __future__ import annotations

from mci.domain.claim_queries import claim_details
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, ClaimView, ok, problem_responses
from mci.wiring import services

router = new_router()


@router.get(
    "/claims/<claim_id>",
    operation_id="getClaim",
    tags=[PARTNER],
    summary="A claim of the caller's partner",
    responses={200: ok(ClaimView, "The claim"), **problem_responses(401, 403, 404, 503)},
)
def get_claim(claim_id: str) -> ClaimView:
    runtime = services()
    return ClaimView.of(claim_details(runtime.claims, principal(router), claim_id, runtime.clock.now()))
