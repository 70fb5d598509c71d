"""GET /known-customers: customers that granted consent on an earlier claim of the caller's partner."""

from __future__ import annotations

from mci.domain.claim_queries import known_customers
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, KnownCustomersResponse, KnownCustomerView, ok, problem_responses
from mci.wiring import services

router = new_router()


@router.get(
    "/known-customers",
    operation_id="listKnownCustomers",
    tags=[PARTNER],
    summary="Known customers of the caller's partner, most recently active first",
    responses={200: ok(KnownCustomersResponse, "Known customers"), **problem_responses(401, 403, 503)},
)
def list_known_customers() -> KnownCustomersResponse:
    found = known_customers(services().claims, principal(router))
    return KnownCustomersResponse(items=[KnownCustomerView.of(k) for k in found])
