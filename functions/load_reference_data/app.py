"""POST /ops/reference-data: programme operations load or replace reference data."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.principal import Principal
from mci.domain.reference import ReferenceData
from mci.http.idempotency import DECLARES_KEY, answered_once
from mci.http.resolver import handle, new_resolver
from mci.http.schemas import OPERATIONS, ReferenceDataCounts, dump, ok, problem_responses
from mci.snapstart import on_snapshot
from mci.wiring import services

app = new_resolver()


@app.post(
    "/ops/reference-data",
    operation_id="loadReferenceData",
    tags=[OPERATIONS],
    summary="Load or replace reference data (records upserted by id)",
    description=(
        "Every record of the body is validated before any is written: one invalid record refuses the whole "
        "body with 422, its `errors` naming each field by position (`customers[3].value`). Records are "
        "upserted by id, so loading the same body again changes nothing. At most 1000 engagements and "
        "5000 records of each other kind, within the body size limit; larger loads go in batches "
        "(the `mci reference-data load` command does so)."
    ),
    openapi_extensions=DECLARES_KEY,
    responses={
        200: ok(ReferenceDataCounts, "How many records of each kind were written (or would be, with dry_run)"),
        **problem_responses(401, 403, 409, 413, 415, 422, 503),
    },
)
def load_reference_data(
    data: Annotated[ReferenceData, Body()],
    dry_run: Annotated[
        bool,
        Query(description="true: validate only and write nothing; the answer is the same as a real load's"),
    ] = False,
) -> dict[str, Any]:
    def load(caller: Principal) -> dict[str, Any]:
        caller.require_operations(services().settings.operations_partner_id, "Loading reference data")
        counts = ReferenceDataCounts.of(data) if dry_run else ReferenceDataCounts(**services().reference.save(data))
        return dump(counts)

    # A dry run is another request than the load of the same body: its key never answers for the load.
    body = {"dry_run": dry_run, **data.model_dump(mode="json")}
    return answered_once(app, "load_reference_data", body, load)


on_snapshot(app, services)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
