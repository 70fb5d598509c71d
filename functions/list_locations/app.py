"""GET /locations: the caller's partner locations."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.catalogue import partner_locations
from mci.http.resolver import handle, new_resolver, principal
from mci.http.schemas import PARTNER, LocationsResponse, ok, problem_responses
from mci.wiring import services

app = new_resolver()


@app.get(
    "/locations",
    operation_id="listLocations",
    tags=[PARTNER],
    summary="The caller's locations",
    responses={
        200: ok(LocationsResponse, "Locations of the caller's partner"),
        **problem_responses(401, 403, 503),
    },
)
def list_locations() -> LocationsResponse:
    return LocationsResponse(items=partner_locations(services().reference, principal(app)))


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
