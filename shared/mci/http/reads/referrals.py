"""GET /referrals/{referral_id}: the referral created from a claim, for referral_admin of the same partner."""

from __future__ import annotations

from mci.domain.referrals import read_referral
from mci.http.reads import new_router
from mci.http.resolver import principal
from mci.http.schemas import PARTNER, Referral, ok, problem_responses
from mci.wiring import services

router = new_router()
MAX_REFERRAL_ID_LENGTH = 64


@router.get(
    "/referrals/<referral_id>",
    operation_id="getReferral",
    tags=[PARTNER],
    summary="A referral of the caller's partner (referral_admin only)",
    responses={200: ok(Referral, "The referral"), **problem_responses(401, 403, 404, 503)},
)
def get_referral(referral_id: str) -> Referral:
    caller = principal(router)
    found = services().claims.get_referral(referral_id) if len(referral_id) <= MAX_REFERRAL_ID_LENGTH else None
    return Referral.of(read_referral(found, caller))
