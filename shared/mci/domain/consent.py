"""Rules 12-14: the partner asks the customer for consent (the first request, resends, redelivery)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mci.domain.claim_queries import own_claim
from mci.domain.claims import (
    AWAITING_CONSENT,
    MAX_RESENDS,
    RESEND_INTERVAL,
    UNDELIVERED,
    Claim,
    ClaimState,
    ConsentRequests,
    EmailDelivery,
    EmailStatus,
)
from mci.domain.clock import isoformat
from mci.domain.commands import ConsentRequest
from mci.domain.errors import Conflict, DeadlinePassed, DependencyUnavailable, FieldError, ValidationFailed
from mci.domain.outbox import ConsentUseCase, claim_context, new_link
from mci.domain.ports import ClaimChange, ConcurrentChange, ConsentTokenRecord
from mci.domain.principal import CLAIM_ROLES, Principal
from mci.domain.referrals import Referral, referral_for
from mci.domain.retry import retry_on_conflict


@dataclass(frozen=True, slots=True)
class _Prepared:
    after: Claim
    token: str
    record: ConsentTokenRecord
    referral: Referral | None


@dataclass
class ConsentRequesting(ConsentUseCase):
    """The partner's side: send and resend the consent email (rules 13-14); the outbox sends it."""

    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    def request(self, principal: Principal, claim_id: str, command: ConsentRequest) -> Claim:
        principal.require_any(CLAIM_ROLES, "Requesting consent")

        def write() -> _Prepared:
            claim = own_claim(self.claims, principal, claim_id)
            prepared = self._prepare(principal, claim, command, self.clock.now())
            self.claims.apply(
                ClaimChange(before=claim, after=prepared.after, put_token=prepared.record, referral=prepared.referral)
            )
            return prepared

        try:
            prepared = retry_on_conflict(write, self.retry, self.sleep)
        except ConcurrentChange as error:
            raise DependencyUnavailable("The claim is changing; retry shortly.") from error
        return self.outbox.send_consent_request(prepared.after, prepared.token, prepared.record)

    def _prepare(self, principal: Principal, claim: Claim, command: ConsentRequest, now: datetime) -> _Prepared:
        if claim.expired_from(now) in AWAITING_CONSENT:
            raise DeadlinePassed(f"The consent deadline {isoformat(claim.consent_deadline)} has passed")
        effective = claim.effective_state(now)
        if effective not in AWAITING_CONSENT:
            raise Conflict(
                "invalid_state",
                f"Consent cannot be requested for a claim in state {effective.value}",
                state=effective.value,
            )
        # An email that never reached the customer (pending, or refused by SES: rule 29) is sent again at once,
        # to the contact as the request leaves it: neither the hour nor the count of rule 14 applies.
        redelivery = claim.consent_email is not None and claim.consent_email.status in UNDELIVERED
        if claim.deal_size_usd is not None and command.deal_size_usd not in (None, claim.deal_size_usd):
            raise Conflict(
                "deal_size_locked",
                f"The deal size is locked at {claim.deal_size_usd} USD",
                field="deal_size_usd",
            )
        first = claim.state is ClaimState.PENDING_CONSENT and not redelivery
        changes = self._asked(claim, command, now, first=first, redelivery=redelivery)
        contact = command.customer_contact or claim.customer_contact
        found = claim_context(self.lookups, claim)
        token, record = new_link(claim, found, contact.language)
        changes["consent_token_hash"] = record.token_hash
        # A redelivery keeps live the links of earlier emails SES may have taken; a resend replaces them all.
        changes["kept_token_hashes"] = claim.links_kept_for(contact.email) if redelivery else []
        changes["unsent_token_hash"] = None
        changes["consent_email"] = EmailDelivery(status=EmailStatus.PENDING, to=contact.email, updated_at=now)
        changes["consent_email_correlation_id"] = principal.request_id
        engagement = found.engagements.get(claim.engagement_id)
        referral = None
        if first and engagement is not None and command.deal_size_usd is not None and claim.referral_id is None:
            referral = referral_for(
                claim, engagement, command.deal_size_usd, self.new_id(), now, correlation_id=principal.request_id
            )
            if referral is not None:
                changes["referral_id"] = referral.referral_id
        if claim.state is ClaimState.PENDING_CONSENT:
            after = claim.transition(
                ClaimState.CONSENT_REQUESTED,
                at=now,
                actor=principal.actor,
                reason="consent requested",
                request_id=principal.request_id,
            ).model_copy(update=changes)
        else:
            after = claim.model_copy(update={**changes, "updated_at": now, "version": claim.version + 1})
        return _Prepared(after=after, token=token, record=record, referral=referral)

    def _asked(
        self, claim: Claim, command: ConsentRequest, now: datetime, *, first: bool, redelivery: bool
    ) -> dict[str, object]:
        """What the request changes besides the link: the deal size (first), the contacts, the count (rule 14)."""
        changes: dict[str, object] = {}
        if first:
            errors = []
            if command.deal_size_usd is None:
                errors.append(("deal_size_usd", "is required on the first consent request", "missing"))
            if command.disclaimer_accepted is not True:
                errors.append(("disclaimer_accepted", "must be true on the first consent request", "missing"))
            if errors:
                raise ValidationFailed([FieldError(*e) for e in errors])
            changes["deal_size_usd"] = command.deal_size_usd
        elif not redelivery:
            self._check_resend(claim, now)
        if command.customer_contact is not None:
            changes["customer_contact"] = command.customer_contact
        if command.partner_contact is not None:
            changes["partner_contact"] = command.partner_contact
        if not redelivery:
            sent = claim.consent_requests
            changes["consent_requests"] = ConsentRequests(count=sent.count + 1, last_sent_at=now)
        return changes

    @staticmethod
    def _check_resend(claim: Claim, now: datetime) -> None:
        sent = claim.consent_requests
        if sent.count - 1 >= MAX_RESENDS:
            raise Conflict("resend_limit", f"The consent email can be resent at most {MAX_RESENDS} times")
        if sent.last_sent_at is not None and now - sent.last_sent_at < RESEND_INTERVAL:
            retry_at = sent.last_sent_at + RESEND_INTERVAL
            raise Conflict(
                "resend_limit",
                f"The consent email can be resent once an hour; next at {isoformat(retry_at)}",
                next_allowed_at=isoformat(retry_at),
            )
