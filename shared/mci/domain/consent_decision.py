"""Rules 15-16: the customer's side of consent: the page a link shows, and the decision taken on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mci.domain.claims import Claim, ClaimState, ConsentDecision, Decision, PendingNotice
from mci.domain.consent_token import plausible, same_hash, token_hash
from mci.domain.errors import DependencyUnavailable
from mci.domain.identifiers import parse_customer_key
from mci.domain.outbox import ConsentUseCase
from mci.domain.ports import (
    ClaimChange,
    ConcurrentChange,
    ConsentPageContext,
    ConsentTokenRecord,
    KnownCustomer,
    Lookup,
)
from mci.domain.referrals import Referral, upgraded
from mci.domain.retry import retry_on_conflict


class PageStatus(StrEnum):
    OPEN = "open"
    GONE = "gone"  # used, expired or unknown: one neutral answer


@dataclass(frozen=True, slots=True)
class ConsentPage:
    """What the public page shows for a link; ``GONE`` reveals nothing about any claim."""

    status: PageStatus
    page: ConsentPageContext | None = None
    deadline: datetime | None = None
    friendly_name: str | None = None
    decision: Decision | None = None


GONE = ConsentPage(PageStatus.GONE)


@dataclass
class ConsentDecisions(ConsentUseCase):
    """The customer's side: read the page of a link, accept or decline on it; the outbox tells the partner."""

    def page(self, token: str) -> ConsentPage:
        """GET and HEAD: read only, and only the token item, which vouches for the claim.

        The token is written in the transaction that moves the claim to ``consent_requested`` (or
        rotates its link), and deleted in the transaction of every change of that hash: every move out
        of ``consent_requested`` (accept, decline, cancel, expiry) and every resend; a redelivery may keep the earlier
        link live beside the new one (``Claim.kept_token_hashes``), deleted with it. So a token that is
        there before its ``expires_at`` (the consent deadline, which never moves: rule 12) is the link
        of a claim awaiting this answer, and it holds what the page shows (docs/data-model.md). The
        decision (``decide``) still reads the claim: its version conditions the write.
        """
        record = self._token(token)
        if record is None:
            return GONE
        return ConsentPage(
            PageStatus.OPEN,
            page=record.page,
            deadline=record.expires_at,
            friendly_name=record.page.customer_name,
        )

    def decide(self, token: str, decision: Decision, request_id: str | None = None) -> ConsentPage:
        """POST: the first decision wins, atomically; any later one sees the neutral page.

        ``request_id``: the API request's, kept in the claim's history entry (the correlation id of its logs)."""

        def write() -> tuple[ConsentTokenRecord, Claim, Claim] | None:
            found = self._live(token)
            if found is None:
                return None
            record, claim = found
            after, known, referral = self._decided(record, claim, decision, self.clock.now(), request_id)
            self.claims.apply(ClaimChange(before=claim, after=after, known_customer=known, referral=referral))
            return record, claim, after

        try:
            written = retry_on_conflict(write, self.retry, self.sleep)
        except ConcurrentChange as error:
            raise DependencyUnavailable("Please try again in a moment.") from error
        if written is None:
            return GONE
        record, claim, after = written
        self.outbox.deliver_notices(after)
        return ConsentPage(
            PageStatus.OPEN,
            page=record.page,
            deadline=claim.consent_deadline,
            friendly_name=claim.friendly_name,
            decision=decision,
        )

    def _decided(
        self, record: ConsentTokenRecord, claim: Claim, decision: Decision, now: datetime, request_id: str | None
    ) -> tuple[Claim, KnownCustomer | None, Referral | None]:
        """Rule 16: the claim as the decision leaves it, the known customer it makes, the referral it upgrades."""
        accepted = decision is Decision.ACCEPT
        kind = "consent_accepted" if accepted else "consent_declined"
        after = claim.transition(
            ClaimState.CONSENT_GRANTED if accepted else ClaimState.CONSENT_DECLINED,
            at=now,
            actor="customer",
            reason="consent accepted" if accepted else "consent declined",
            request_id=request_id,
            consent_token_hash=None,
            consent_decision=ConsentDecision(decision=decision, at=now),
            pending_notices=[
                PendingNotice(
                    kind=kind, engagement_name=record.page.engagement_name, since=now, correlation_id=request_id
                )
            ],
            submission_deadline=now + timedelta(days=record.page.submission_window_days) if accepted else None,
        )
        if not accepted:
            return after, None, None
        return after, self._known_customer(after, now), self._co_sell(after, now, request_id)

    def _token(self, token: str) -> ConsentTokenRecord | None:
        """The link's token record while it is valid: until the consent deadline or first use (rule 15)."""
        if not plausible(token):
            return None
        record = self.claims.get_token(token_hash(token))
        if record is None or self.clock.now() >= record.expires_at:
            return None
        return record

    def _live(self, token: str) -> tuple[ConsentTokenRecord, Claim] | None:
        record = self._token(token)
        if record is None:
            return None
        digest = record.token_hash
        claim = self.claims.get_claim(record.claim_id)
        if claim is None or claim.state is not ClaimState.CONSENT_REQUESTED:
            return None
        live = any(same_hash(kept, digest) for kept in sorted(claim.live_token_hashes))  # current, or kept beside it
        if not live or claim.effective_state(self.clock.now()).is_terminal:
            return None
        return record, claim

    def _co_sell(self, claim: Claim, now: datetime, request_id: str | None) -> Referral | None:
        """Rule 26: the referral becomes co_sell when consent is granted and the customer allows co-sell."""
        customer = parse_customer_key(claim.customer_key)
        if claim.referral_id is None or customer is None:
            return None
        found = self.lookups.look_up(Lookup(referral_id=claim.referral_id, customers=(customer,)))
        if found.referral is None:
            return None
        return upgraded(found.referral, found.customers.get(customer.key), now, request_id)

    @staticmethod
    def _known_customer(claim: Claim, now: datetime) -> KnownCustomer:
        type_, _, value = claim.customer_key.partition(":")
        given = f"{claim.identifier.type.value}:{claim.identifier.value}"
        return KnownCustomer(
            identifiers=tuple(dict.fromkeys((claim.customer_key, given))),  # the store adds them to earlier ones
            partner_id=claim.partner_id,
            customer_id=claim.customer_key,
            identifier_type=type_,
            identifier_value=value,
            name=claim.friendly_name,
            customer_contact=claim.customer_contact.model_dump(mode="json"),
            partner_contact=claim.partner_contact.model_dump(mode="json"),
            last_claim_id=claim.claim_id,
            known_since=now,
            updated_at=now,
        )
