"""Reads of claims and known customers as the partner sees them, with exact expiry (rule 17)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from mci.domain.claims import Claim, EmailDelivery, EmailStatus
from mci.domain.errors import NotFound
from mci.domain.ports import ClaimChange, ClaimChanges, ConcurrentChange, KnownCustomer
from mci.domain.principal import CLAIM_ROLES, Principal
from mci.domain.retry import RetryPolicy, retry_on_conflict

MAX_CLAIM_ID_LENGTH = 64  # a longer id was never issued: answered as unknown without a read


def stored_claim(claims: ClaimChanges, claim_id: str) -> Claim:
    """The claim with that id, whoever's it is (operations); NotFound for an unknown one."""
    claim = claims.get_claim(claim_id) if len(claim_id) <= MAX_CLAIM_ID_LENGTH else None
    if claim is None:
        raise NotFound("Claim")
    return claim


def own_claim(claims: ClaimChanges, principal: Principal, claim_id: str) -> Claim:
    """The caller's claim as stored; another partner's claim is answered exactly like a missing one."""
    claim = claims.get_claim(claim_id) if len(claim_id) <= MAX_CLAIM_ID_LENGTH else None
    if claim is None or claim.partner_id != principal.partner_id:
        raise NotFound("Claim")
    return claim


def claim_details(claims: ClaimChanges, principal: Principal, claim_id: str, now: datetime) -> Claim:
    """The caller's claim as of ``now``; another partner's claim is answered exactly like a missing one."""
    principal.require_any(CLAIM_ROLES, "Reading a claim")
    return own_claim(claims, principal, claim_id).as_seen_at(now)


def known_customers(claims: ClaimChanges, principal: Principal) -> list[KnownCustomer]:
    principal.require_any(CLAIM_ROLES, "Listing known customers")
    return sorted(claims.list_known_customers(principal.partner_id), key=lambda k: k.updated_at, reverse=True)


def record_delivery_problem(
    claims: ClaimChanges,
    claim_id: str,
    message_id: str,
    status: EmailStatus,
    now: datetime,
    *,
    retry: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Mark the claim's consent email bounced or complained, if that message is still the latest one."""

    def mark() -> bool:
        claim = claims.get_claim(claim_id)
        email = claim.consent_email if claim else None
        if claim is None or email is None or email.message_id != message_id or email.status is status:
            return False
        updated = EmailDelivery(
            status=status, to=email.to, message_id=email.message_id, sent_at=email.sent_at, updated_at=now
        )
        claims.apply(
            ClaimChange(
                before=claim, after=claim.model_copy(update={"consent_email": updated, "version": claim.version + 1})
            )
        )
        return True

    try:
        return retry_on_conflict(mark, retry, sleep)
    except ConcurrentChange:
        return False
