"""GET /locations: the caller's partner locations."""

from __future__ import annotations

from mci.domain.catalogue import partner_locations
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, LocationsResponse, ok, problem_responses
from mci.wiring import services

router = new_router()


@router.get(
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
    return LocationsResponse(items=partner_locations(services().reference, principal(router)))
