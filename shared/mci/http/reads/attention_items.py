"""GET /attention-items: the partner's claims waiting for it, across its engagements, soonest deadline first."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from mci.domain.attention import DEFAULT_PAGE, MAX_PAGE
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, AttentionResponse, ok, problem_responses
from mci.wiring import attention

router = new_router()


@router.get(
    "/attention-items",
    operation_id="listAttentionItems",
    tags=[PARTNER],
    summary="Attention required: claims waiting for the partner (consent not requested, consent deadline "
    "within 7 days, consented but not submitted), soonest deadline first",
    responses={200: ok(AttentionResponse, "One page of the list"), **problem_responses(401, 403, 422, 503)},
)
def attention_items(
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> AttentionResponse:
    return AttentionResponse.of(attention().page(principal(router), cursor, limit))
