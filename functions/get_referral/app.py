"""GET /referrals/{referral_id}: the referral created from a claim, for referral_admin of the same partner."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.domain.referrals import Referral, read_referral
from mci.http.resolver import handle, new_resolver, principal
from mci.http.schemas import PARTNER, ok, problem_responses
from mci.wiring import services

app = new_resolver()
MAX_REFERRAL_ID_LENGTH = 64


@app.get(
    "/referrals/<referral_id>",
    operation_id="getReferral",
    tags=[PARTNER],
    summary="A referral of the caller's partner (referral_admin only)",
    responses={200: ok(Referral, "The referral"), **problem_responses(401, 403, 404, 503)},
)
def get_referral(referral_id: str) -> Referral:
    caller = principal(app)
    found = services().claims.get_referral(referral_id) if len(referral_id) <= MAX_REFERRAL_ID_LENGTH else None
    return read_referral(found, caller)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
