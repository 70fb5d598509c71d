"""GET /known-customers: customers that granted consent on an earlier claim of the caller's partner."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.claim_queries import known_customers
from mci.http.resolver import handle, new_resolver, principal
from mci.http.schemas import PARTNER, KnownCustomersResponse, KnownCustomerView, ok, problem_responses
from mci.wiring import services

app = new_resolver()


@app.get(
    "/known-customers",
    operation_id="listKnownCustomers",
    tags=[PARTNER],
    summary="Known customers of the caller's partner, most recently active first",
    responses={200: ok(KnownCustomersResponse, "Known customers"), **problem_responses(401, 403, 503)},
)
def list_known_customers() -> KnownCustomersResponse:
    found = known_customers(services().claims, principal(app))
    return KnownCustomersResponse(items=[KnownCustomerView.of(k) for k in found])


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
