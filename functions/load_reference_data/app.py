"""POST /ops/reference-data: programme operations load or replace reference data."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.principal import Role
from mci.domain.reference import ReferenceData
from mci.http.resolver import handle, new_resolver, principal
from mci.http.schemas import ReferenceDataCounts, ok, problem_responses
from mci.wiring import services

app = new_resolver()


@app.post(
    "/ops/reference-data",
    summary="Load or replace reference data (records upserted by id)",
    responses={
        200: ok(ReferenceDataCounts, "How many records of each kind were written"),
        **problem_responses(401, 403, 413, 422, 503),
    },
)
def load_reference_data(data: Annotated[ReferenceData, Body()]) -> ReferenceDataCounts:
    principal(app).require_any(frozenset({Role.MCI_OPERATIONS}), "Loading reference data")
    return ReferenceDataCounts(**services().reference.save(data))


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
