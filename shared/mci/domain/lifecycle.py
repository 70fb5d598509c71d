"""Rules 18-19: submit, cancel and review, each a conditional write on the claim's state and version."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mci.domain.claim_queries import MAX_CLAIM_ID_LENGTH
from mci.domain.claims import ACTIVE_STATES, Claim, ClaimState
from mci.domain.clock import Clock, isoformat
from mci.domain.commands import Cancellation, Review, ReviewDecision, Submission
from mci.domain.errors import Conflict, DeadlinePassed, DependencyUnavailable, NotFound
from mci.domain.ports import ClaimChange, ClaimChanges, ConcurrentChange
from mci.domain.principal import CLAIM_ROLES, OPERATIONS_PARTNER_ID, Principal

CANCELLABLE = ACTIVE_STATES - {ClaimState.SUBMITTED}


@dataclass
class Lifecycle:
    claims: ClaimChanges
    clock: Clock
    write_attempts: int = 5
    operations_partner_id: str = OPERATIONS_PARTNER_ID
    sleep: Callable[[float], None] = time.sleep

    def submit(self, principal: Principal, claim_id: str, submission: Submission) -> Claim:
        principal.require_any(CLAIM_ROLES, "Submitting a claim")

        def move(claim: Claim) -> Claim:
            now = self.clock.now()
            if claim.expired_from(now) is ClaimState.CONSENT_GRANTED:
                deadline = claim.submission_deadline
                raise DeadlinePassed(f"The submission deadline {isoformat(deadline) if deadline else ''} has passed")
            self._require_state(claim, frozenset({ClaimState.CONSENT_GRANTED}), now, "submitted")
            return claim.transition(
                ClaimState.SUBMITTED,
                at=now,
                actor=principal.actor,
                request_id=principal.request_id,
                reason="submitted",
                submission_notes=submission.notes,
            )

        return self._change(lambda: self._own(principal, claim_id), move)

    def cancel(self, principal: Principal, claim_id: str, cancellation: Cancellation) -> Claim:
        principal.require_any(CLAIM_ROLES, "Cancelling a claim")

        def move(claim: Claim) -> Claim:
            now = self.clock.now()
            self._require_state(claim, CANCELLABLE, now, "cancelled")
            return claim.transition(
                ClaimState.CANCELLED,
                at=now,
                actor=principal.actor,
                request_id=principal.request_id,
                reason=cancellation.reason,
                consent_token_hash=None,
            )

        return self._change(lambda: self._own(principal, claim_id), move)

    def review(self, principal: Principal, claim_id: str, review: Review) -> Claim:
        """Operations act on any partner's submitted claim."""
        principal.require_operations(self.operations_partner_id, "Reviewing a claim")

        def load() -> Claim:
            claim = self.claims.get_claim(claim_id) if len(claim_id) <= MAX_CLAIM_ID_LENGTH else None
            if claim is None:
                raise NotFound("Claim")
            return claim

        def move(claim: Claim) -> Claim:
            now = self.clock.now()
            self._require_state(claim, frozenset({ClaimState.SUBMITTED}), now, "reviewed")
            to = ClaimState.COMPLETED if review.decision is ReviewDecision.COMPLETE else ClaimState.REJECTED
            return claim.transition(
                to,
                at=now,
                actor=f"operations:{principal.user_id}",
                reason=review.reason,
                request_id=principal.request_id,
            )

        return self._change(load, move)

    def _own(self, principal: Principal, claim_id: str) -> Claim:
        claim = self.claims.get_claim(claim_id) if len(claim_id) <= MAX_CLAIM_ID_LENGTH else None
        if claim is None or claim.partner_id != principal.partner_id:
            raise NotFound("Claim")
        return claim

    @staticmethod
    def _require_state(claim: Claim, allowed: frozenset[ClaimState], now: datetime, verb: str) -> None:
        effective = claim.effective_state(now)
        if effective not in allowed:
            raise Conflict(
                "invalid_state", f"A claim in state {effective.value} cannot be {verb}", state=effective.value
            )

    def _change(self, load: Callable[[], Claim], move: Callable[[Claim], Claim]) -> Claim:
        for attempt in range(self.write_attempts):
            before = load()
            after = move(before)
            try:
                self.claims.apply(ClaimChange(before=before, after=after))
            except ConcurrentChange:
                self.sleep(random.uniform(0.005, 0.02 * (attempt + 1)))  # noqa: S311 - jitter
                continue
            return after
        raise DependencyUnavailable("The claim is changing; retry shortly.")
