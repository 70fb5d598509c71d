"""Issue 14: the "Attention required" list, the partner's claims waiting for it across its engagements.

A claim waits for the partner when consent was never requested, when the customer's consent deadline is
at most seven days away, or when it is consented but not submitted. Soonest deadline first; a claim past
its deadline is expired (rule 17) and so never listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mci.domain.claims import Claim, ClaimState
from mci.domain.errors import ValidationFailed
from mci.domain.paging import MIN_CURSOR_KEY_BYTES, days_left, sign_cursor, signed_values
from mci.domain.ports import PartnerClaims, ReferenceRepository
from mci.domain.principal import CLAIM_ROLES, Principal

MAX_PAGE = 100
DEFAULT_PAGE = 25
SOON = timedelta(days=7)
READ_BATCH = 100  # claims per Query of a partition
CURSOR_KIND = "attention"


class AttentionReason(StrEnum):
    CONSENT_NOT_REQUESTED = "consent_not_requested"
    CONSENT_DEADLINE_SOON = "consent_deadline_soon"
    NOT_SUBMITTED = "not_submitted"


@dataclass(frozen=True, slots=True)
class AttentionItem:
    claim: Claim
    engagement_name: str
    reason: AttentionReason
    deadline: datetime
    days_left: int

    @property
    def position(self) -> str:
        """Soonest deadline first; the claim id breaks ties, so the order is total and a cursor exact."""
        return f"{self.deadline.isoformat()}#{self.claim.claim_id}"


@dataclass(frozen=True, slots=True)
class AttentionPage:
    items: list[AttentionItem]
    next_cursor: str | None


def attention_reason(claim: Claim, now: datetime) -> AttentionReason | None:
    """Why the claim waits for the partner at ``now``, or None when it does not."""
    state = claim.effective_state(now)  # past its deadline: expired, so nothing to do (rule 17)
    if state is ClaimState.PENDING_CONSENT:
        return AttentionReason.CONSENT_NOT_REQUESTED
    if state is ClaimState.CONSENT_REQUESTED and claim.consent_deadline - now <= SOON:
        return AttentionReason.CONSENT_DEADLINE_SOON
    if state is ClaimState.CONSENT_GRANTED:
        return AttentionReason.NOT_SUBMITTED
    return None


@dataclass
class AttentionQuery:
    """Reads the partner's active partition of each engagement (Query GSI1, no Scan): the work follows the
    partner's active claims, which the engagements' limits bound, in pages of ``READ_BATCH``."""

    reference: ReferenceRepository
    claims: PartnerClaims
    now: Callable[[], datetime]
    cursor_key: bytes  # signs the cursors it issues (settings: CURSOR_SIGNING_KEY), as the Customers page

    def __post_init__(self) -> None:
        if len(self.cursor_key) < MIN_CURSOR_KEY_BYTES:
            raise ValueError(f"the cursor signing key needs at least {MIN_CURSOR_KEY_BYTES} bytes")

    def page(self, principal: Principal, cursor_text: str | None, limit: int) -> AttentionPage:
        principal.require_any(CLAIM_ROLES, "Reading the claims that need attention")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed.single("limit", f"must be from 1 to {MAX_PAGE}")
        after = self._position(cursor_text, principal.partner_id) if cursor_text else None
        now = self.now()
        waiting = sorted(
            (i for i in self._items(principal.partner_id, now) if after is None or i.position > after),
            key=lambda i: i.position,
        )
        page = waiting[:limit]
        more = len(waiting) > limit
        if not more:
            return AttentionPage(items=page, next_cursor=None)
        return AttentionPage(
            items=page, next_cursor=sign_cursor(self.cursor_key, [principal.partner_id, CURSOR_KIND, page[-1].position])
        )

    def _position(self, text: str, partner_id: str) -> str:
        values = signed_values(text, self.cursor_key)
        if len(values) != 3 or values[1] != CURSOR_KIND or not isinstance(values[2], str):
            raise ValidationFailed.single("cursor", "belongs to another page")
        if values[0] != partner_id:
            raise ValidationFailed.single("cursor", "belongs to another page")
        return values[2]

    def _items(self, partner_id: str, now: datetime) -> list[AttentionItem]:
        found: list[AttentionItem] = []
        for engagement in self.reference.list_engagements():
            position: str | None = None
            while True:
                batch, more = self.claims.partner_claims(
                    partner_id, engagement.engagement_id, terminal=False, before=position, limit=READ_BATCH
                )
                for claim in batch:
                    if claim.partner_id != partner_id:  # the partition is the partner's; never trust it blindly
                        continue
                    reason = attention_reason(claim, now)
                    deadline = claim.deadline
                    if reason is not None and deadline is not None:
                        found.append(
                            AttentionItem(
                                claim=claim.as_seen_at(now),
                                engagement_name=engagement.name,
                                reason=reason,
                                deadline=deadline,
                                days_left=days_left(deadline, now) or 0,
                            )
                        )
                if not more or not batch:
                    break
                position = batch[-1].position
        return found
