"""GET /engagements/{engagement_id}/customers: the Customers page, tab by tab (rules 21-24)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from mci.domain.customers_page import DEFAULT_PAGE, MAX_PAGE, Tab
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, CustomersPageResponse, ok, problem_responses
from mci.wiring import customers_page

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
