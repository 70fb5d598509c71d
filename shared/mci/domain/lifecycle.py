"""Rules 18-19: submit, cancel and review, each a conditional write on the claim's state and version."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mci.domain.claim_queries import own_claim, stored_claim
from mci.domain.claims import ACTIVE_STATES, Claim, ClaimState
from mci.domain.clock import Clock, isoformat
from mci.domain.commands import Cancellation, Review, ReviewDecision, Submission
from mci.domain.errors import Conflict, DeadlinePassed, DependencyUnavailable
from mci.domain.ports import ClaimChange, ClaimChanges, ConcurrentChange
from mci.domain.principal import CLAIM_ROLES, OPERATIONS_PARTNER_ID, Principal
from mci.domain.retry import DEFAULT_RETRY, RetryPolicy, retry_on_conflict

CANCELLABLE = ACTIVE_STATES - {ClaimState.SUBMITTED}


@dataclass
class Lifecycle:
    claims: ClaimChanges
    clock: Clock
    retry: RetryPolicy = DEFAULT_RETRY
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

        return self._change(lambda: own_claim(self.claims, principal, claim_id), move)

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

        return self._change(lambda: own_claim(self.claims, principal, claim_id), move)

    def review(self, principal: Principal, claim_id: str, review: Review) -> Claim:
        """Operations act on any partner's submitted claim."""
        principal.require_operations(self.operations_partner_id, "Reviewing a claim")

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

        return self._change(lambda: stored_claim(self.claims, claim_id), move)

    @staticmethod
    def _require_state(claim: Claim, allowed: frozenset[ClaimState], now: datetime, verb: str) -> None:
        effective = claim.effective_state(now)
        if effective not in allowed:
            raise Conflict(
                "invalid_state", f"A claim in state {effective.value} cannot be {verb}", state=effective.value
            )

    def _change(self, load: Callable[[], Claim], move: Callable[[Claim], Claim]) -> Claim:
        def write() -> Claim:
            before = load()
            after = move(before)
            self.claims.apply(ClaimChange(before=before, after=after))
            return after

        try:
            return retry_on_conflict(write, self.retry, self.sleep)
        except ConcurrentChange as error:
            raise DependencyUnavailable("The claim is changing; retry shortly.") from error
