"""GET /engagements/{engagement_id}/customers: the Customers page, tab by tab (rules 21-24)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field

from mci.domain.claims import ClaimState, EmailStatus
from mci.domain.customers_page import DEFAULT_PAGE, MAX_PAGE, Action, PageItemKind, Tab
from mci.domain.identifiers import IdentifierType
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, KnownIdentifier, ReasonView, View, ok, problem_responses
from mci.wiring import customers_page

if TYPE_CHECKING:
    from mci.domain.customers_page import CustomersPage, PageItem


class PageItemView(View):
    kind: PageItemKind
    claim_id: str | None = None
    customer_id: str | None = None
    friendly_name: str
    customer: KnownIdentifier
    state: ClaimState | None = None
    deadline: datetime | None = Field(default=None, description="The deadline that matters now")
    days_left: int | None = None
    actions: list[Action]
    reasons: list[ReasonView] = Field(default_factory=list)
    consent_email_status: EmailStatus | None = Field(
        default=None, description="Where the claim's consent email stands: rejected or failed means it never arrived"
    )

    @classmethod
    def of(cls, item: PageItem) -> PageItemView:
        claim = item.claim
        return cls(
            kind=item.kind,
            claim_id=claim.claim_id if claim else None,
            customer_id=item.customer_id,
            friendly_name=item.friendly_name,
            customer=KnownIdentifier(type=IdentifierType(item.identifier_type), value=item.identifier_value),
            state=claim.state if claim else None,
            deadline=item.deadline,
            days_left=item.days_left,
            actions=list(item.actions),
            reasons=[ReasonView(**r.as_dict()) for r in item.reasons],
            consent_email_status=claim.consent_email.status if claim and claim.consent_email else None,
        )


class CustomersPageResponse(View):
    items: list[PageItemView]
    next_cursor: str | None
    note: str | None = None

    @classmethod
    def of(cls, page: CustomersPage) -> CustomersPageResponse:
        return cls(items=[PageItemView.of(i) for i in page.items], next_cursor=page.next_cursor, note=page.note)


router = new_router()


@router.get(
    "/engagements/<engagement_id>/customers",
    operation_id="getCustomersPage",
    tags=[PARTNER],
    summary="The Customers page of an engagement: eligible, ineligible or complete",
    responses={200: ok(CustomersPageResponse, "One page of the tab"), **problem_responses(401, 403, 404, 422, 503)},
)
def customers(
    engagement_id: str,
    tab: Annotated[Tab, Query()] = Tab.ELIGIBLE,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> CustomersPageResponse:
    page = customers_page().page(principal(router), engagement_id, tab, cursor, limit)
    return CustomersPageResponse.of(page)
