"""GET /attention-items: the partner's claims waiting for it, across its engagements, soonest deadline first."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field

from mci.domain.attention import DEFAULT_PAGE, MAX_PAGE, AttentionReason
from mci.domain.claims import ClaimState
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, KnownIdentifier, View, ok, problem_responses
from mci.wiring import attention

if TYPE_CHECKING:
    from mci.domain.attention import AttentionItem, AttentionPage


class AttentionItemView(View):
    claim_id: str
    engagement_id: str
    engagement_name: str
    friendly_name: str
    identifier: KnownIdentifier
    state: ClaimState
    reason: AttentionReason = Field(
        description="consent_not_requested, consent_deadline_soon (7 days or fewer left) or not_submitted"
    )
    deadline: datetime = Field(description="The consent deadline, or the submission deadline once consented")
    days_left: int = Field(description="Whole days until the deadline, 0 on its last day")

    @classmethod
    def of(cls, item: AttentionItem) -> AttentionItemView:
        claim = item.claim
        return cls(
            claim_id=claim.claim_id,
            engagement_id=claim.engagement_id,
            engagement_name=item.engagement_name,
            friendly_name=claim.friendly_name,
            identifier=KnownIdentifier(type=claim.identifier.type, value=claim.identifier.value),
            state=claim.state,
            reason=item.reason,
            deadline=item.deadline,
            days_left=item.days_left,
        )


class AttentionResponse(View):
    items: list[AttentionItemView]
    next_cursor: str | None

    @classmethod
    def of(cls, page: AttentionPage) -> AttentionResponse:
        return cls(items=[AttentionItemView.of(i) for i in page.items], next_cursor=page.next_cursor)


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
