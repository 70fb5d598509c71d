"""Rules 12-16: asking the customer for consent, and recording the customer's answer."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from mci.domain.claims import (
    AWAITING_CONSENT,
    MAX_RESENDS,
    RESEND_INTERVAL,
    UNDELIVERED,
    Claim,
    ClaimState,
    ConsentDecision,
    ConsentEvidence,
    ConsentRequests,
    Decision,
    EmailDelivery,
    EmailFailure,
    EmailStatus,
    PendingNotice,
)
from mci.domain.clock import Clock, isoformat
from mci.domain.commands import ConsentRequest
from mci.domain.consent_token import new_token, plausible, same_hash, token_hash
from mci.domain.errors import (
    Conflict,
    DeadlinePassed,
    DependencyUnavailable,
    EmailRejected,
    FieldError,
    NotFound,
    ValidationFailed,
)
from mci.domain.identifiers import parse_customer_key
from mci.domain.lookups import SeparateLookups
from mci.domain.outbox import DEFAULT_MAX_ATTEMPTS, Notices
from mci.domain.ports import (
    ClaimChange,
    ClaimChanges,
    ConcurrentChange,
    ConsentPageContext,
    ConsentTokenRecord,
    EmailMessage,
    Found,
    KnownCustomer,
    Lookup,
    Lookups,
    Mailer,
    ReferenceRepository,
)
from mci.domain.principal import CLAIM_ROLES, Principal
from mci.domain.referrals import Referral, referral_for, upgraded
from mci.emails.render import long_date, render


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


@dataclass(frozen=True, slots=True)
class _Prepared:
    after: Claim
    token: str
    record: ConsentTokenRecord
    referral: Referral | None


@dataclass
class ConsentFlow:
    reference: ReferenceRepository
    claims: ClaimChanges
    mailer: Mailer
    clock: Clock
    public_base_url: str
    write_attempts: int = 5
    sleep: Callable[[float], None] = time.sleep
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    lookups: Lookups | None = None  # one BatchGetItem on DynamoDB; by default the ports one by one
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # rule 29: sends of an email before the outbox gives it up

    @property
    def notices(self) -> Notices:
        return Notices(
            claims=self.claims,
            mailer=self.mailer,
            clock=self.clock,
            write_attempts=self.write_attempts,
            max_attempts=self.max_attempts,
            sleep=self.sleep,
        )

    # --- partner side: send and resend (rules 13-14) -------------------------------------------

    def request(self, principal: Principal, claim_id: str, command: ConsentRequest) -> Claim:
        principal.require_any(CLAIM_ROLES, "Requesting consent")
        for attempt in range(self.write_attempts):
            claim = self.own_claim(principal, claim_id)
            now = self.clock.now()
            prepared = self._prepare(principal, claim, command, now)
            try:
                self.claims.apply(
                    ClaimChange(
                        before=claim, after=prepared.after, put_token=prepared.record, referral=prepared.referral
                    )
                )
            except ConcurrentChange:
                self.sleep(random.uniform(0.005, 0.02 * (attempt + 1)))  # noqa: S311 - jitter
                continue
            return self._deliver(prepared.after, prepared.token, prepared.record)
        raise DependencyUnavailable("The claim is changing; retry shortly.")

    def own_claim(self, principal: Principal, claim_id: str) -> Claim:
        """The caller's claim; another partner's is answered exactly like a missing one."""
        claim = self.claims.get_claim(claim_id) if len(claim_id) <= 64 else None
        if claim is None or claim.partner_id != principal.partner_id:
            raise NotFound("Claim")
        return claim

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
        changes: dict[str, object] = {}
        first = False
        if claim.state is ClaimState.PENDING_CONSENT and not redelivery:
            errors = []
            if command.deal_size_usd is None:
                errors.append(("deal_size_usd", "is required on the first consent request", "missing"))
            if command.disclaimer_accepted is not True:
                errors.append(("disclaimer_accepted", "must be true on the first consent request", "missing"))
            if errors:
                raise ValidationFailed([FieldError(*e) for e in errors])
            changes["deal_size_usd"] = command.deal_size_usd
            first = True
        elif not redelivery:
            self._check_resend(claim, now)
        if command.customer_contact is not None:
            changes["customer_contact"] = command.customer_contact
        if command.partner_contact is not None:
            changes["partner_contact"] = command.partner_contact
        sent = claim.consent_requests
        if not redelivery:
            changes["consent_requests"] = ConsentRequests(count=sent.count + 1, last_sent_at=now)
        token = new_token()
        contact = command.customer_contact or claim.customer_contact
        changes["consent_token_hash"] = token_hash(token)
        changes["consent_email"] = EmailDelivery(status=EmailStatus.PENDING, to=contact.email, updated_at=now)
        found = self._claim_context(claim)
        engagement = found.engagements.get(claim.engagement_id)
        record = ConsentTokenRecord(
            token_hash=token_hash(token),
            claim_id=claim.claim_id,
            partner_id=claim.partner_id,
            expires_at=claim.consent_deadline,
            page=self._page_context(claim, found, contact.language),
        )
        referral = None
        if first and engagement is not None and command.deal_size_usd is not None and claim.referral_id is None:
            referral = referral_for(claim, engagement, command.deal_size_usd, self.new_id(), now)
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

    def _check_resend(self, claim: Claim, now: datetime) -> None:
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

    def _look_up(self, lookup: Lookup) -> Found:
        return (self.lookups or SeparateLookups(self.reference, get_referral=self.claims.get_referral)).look_up(lookup)

    def _claim_context(self, claim: Claim) -> Found:
        """The claim's engagement and location, read together: what the email and the page name."""
        return self._look_up(Lookup(location_id=claim.location_id, engagement_ids=(claim.engagement_id,)))

    @staticmethod
    def _page_context(claim: Claim, found: Found, language: str) -> ConsentPageContext:
        location = found.location
        engagement = found.engagements.get(claim.engagement_id)
        return ConsentPageContext(
            language=language,
            partner_name=location.name if location else claim.partner_id,
            engagement_name=engagement.name if engagement else claim.engagement_id,
            customer_name=claim.friendly_name,
            submission_window_days=engagement.submission_window_days if engagement else 90,
        )

    def _deliver(self, claim: Claim, token: str, record: ConsentTokenRecord) -> Claim:
        """Send the email after the state is written; a failure leaves it pending for a retry."""
        page = record.page
        contact = claim.customer_contact
        rendered = render(
            "consent_request",
            page.language,
            {
                "customer_name": contact.name,
                "partner_name": page.partner_name,
                "friendly_name": claim.friendly_name,
                "engagement_name": page.engagement_name,
                "deadline": long_date(claim.consent_deadline, page.language),
                "link": f"{self.public_base_url.rstrip('/')}/consent/{token}",
                "partner_contact_name": claim.partner_contact.name,
                "partner_contact_email": claim.partner_contact.email,
            },
        )
        try:
            message_id = self.mailer.send(
                EmailMessage(
                    to=contact.email,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    tags={"claim_id": claim.claim_id, "kind": "consent_request"},
                )
            )
        except EmailRejected as error:
            self._record_undelivered(claim, "email_rejected")
            raise error.naming("customer_contact.email") from error
        now = self.clock.now()
        evidence = ConsentEvidence(
            sent_at=now,
            to=contact.email,
            language=page.language,
            template_version=rendered.version,
            message_id=message_id,
            deal_size_usd=claim.deal_size_usd,
            hours=claim.hours,
            proposed_payment_usd=claim.proposed_payment_usd,
        )
        delivery = EmailDelivery(
            status=EmailStatus.SENT, to=contact.email, message_id=message_id, sent_at=now, updated_at=now
        )
        return self._record_sent(claim, evidence, delivery)

    def _record_undelivered(self, claim: Claim, reason: str) -> Claim:
        """Rule 29: SES refused the consent email for good, or kept failing: recorded, never retried by the sweep.
        The partner sees it on the claim, fixes the contact and requests consent again."""
        now = self.clock.now()
        email = claim.consent_email
        status = EmailStatus.REJECTED if reason == "email_rejected" else EmailStatus.FAILED
        attempts = (email.attempts if email else 0) + 1
        failure = EmailFailure.model_validate(
            {
                "kind": "consent_request",
                "to": claim.customer_contact.email,
                "reason": reason,
                "at": now,
                "attempts": attempts,
            }
        )
        delivery = EmailDelivery(status=status, to=claim.customer_contact.email, updated_at=now, attempts=attempts)
        return self._record_sent(claim, None, delivery, failure)

    def _record_sent(
        self,
        claim: Claim,
        evidence: ConsentEvidence | None,
        delivery: EmailDelivery,
        failure: EmailFailure | None = None,
    ) -> Claim:
        """The email is out: record it, or a retry (the client's, or the sweep's redelivery) sends it again.

        A throttled write is tried again; a concurrent change that kept this link waiting for its email is
        re-read and recorded on; one that replaced the link or moved the claim on makes this email history.
        """
        for attempt in range(self.write_attempts):
            sent = claim.model_copy(
                update={
                    "consent_evidence": [*claim.consent_evidence, *([evidence] if evidence else [])],
                    "consent_email": delivery,
                    "email_failures": [*claim.email_failures, *([failure] if failure else [])],
                    "version": claim.version + 1,
                }
            )
            try:
                self.claims.apply(ClaimChange(before=claim, after=sent))
            except ConcurrentChange:
                current = self.claims.get_claim(claim.claim_id)
                if (
                    current is None
                    or not current.consent_email_stuck
                    or current.consent_token_hash != claim.consent_token_hash
                ):
                    return current or sent
                claim = current
                continue
            except DependencyUnavailable:
                if attempt == self.write_attempts - 1:
                    raise
                self.sleep(random.uniform(0.01, 0.05 * (attempt + 1)))  # noqa: S311 - jitter
                continue
            return sent
        return claim

    # --- customer side: the page and the decision (rules 15-16) --------------------------------

    def page(self, token: str) -> ConsentPage:
        """GET and HEAD: read only, and only the token item, which vouches for the claim.

        The token is written in the transaction that moves the claim to ``consent_requested`` (or
        rotates its link), and deleted in the transaction of every change of that hash: every move out
        of ``consent_requested`` (accept, decline, cancel, expiry) and every resend. So a token that is
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

    def decide(self, token: str, decision: Decision) -> ConsentPage:
        """POST: the first decision wins, atomically; any later one sees the neutral page."""
        for attempt in range(self.write_attempts):
            found = self._live(token)
            if found is None:
                return GONE
            record, claim = found
            now = self.clock.now()
            decided = ConsentDecision(decision=decision, at=now)
            page_name = record.page.engagement_name
            if decision is Decision.ACCEPT:
                after = claim.transition(
                    ClaimState.CONSENT_GRANTED,
                    at=now,
                    actor="customer",
                    reason="consent accepted",
                    submission_deadline=now + timedelta(days=record.page.submission_window_days),
                    consent_token_hash=None,
                    consent_decision=decided,
                    pending_notices=[PendingNotice(kind="consent_accepted", engagement_name=page_name, since=now)],
                )
                known = self._known_customer(after, now)
                referral = self._co_sell(after, now)
            else:
                after = claim.transition(
                    ClaimState.CONSENT_DECLINED,
                    at=now,
                    actor="customer",
                    reason="consent declined",
                    consent_token_hash=None,
                    consent_decision=decided,
                    pending_notices=[PendingNotice(kind="consent_declined", engagement_name=page_name, since=now)],
                )
                known = None
                referral = None
            try:
                self.claims.apply(ClaimChange(before=claim, after=after, known_customer=known, referral=referral))
            except ConcurrentChange:
                self.sleep(random.uniform(0.005, 0.02 * (attempt + 1)))  # noqa: S311 - jitter
                continue
            self.deliver_notices(after)
            return ConsentPage(
                PageStatus.OPEN,
                page=record.page,
                deadline=claim.consent_deadline,
                friendly_name=claim.friendly_name,
                decision=decision,
            )
        raise DependencyUnavailable("Please try again in a moment.")

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
        if not same_hash(claim.consent_token_hash, digest) or claim.effective_state(self.clock.now()).is_terminal:
            return None
        return record, claim

    def _co_sell(self, claim: Claim, now: datetime) -> Referral | None:
        """Rule 26: the referral becomes co_sell when consent is granted and the customer allows co-sell."""
        customer = parse_customer_key(claim.customer_key)
        if claim.referral_id is None or customer is None:
            return None
        found = self._look_up(Lookup(referral_id=claim.referral_id, customers=(customer,)))
        if found.referral is None:
            return None
        return upgraded(found.referral, found.customers.get(customer.key), now)

    def _known_customer(self, claim: Claim, now: datetime) -> KnownCustomer:
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

    # --- the outbox: emails written with their change, sent after it, retried by the sweep ---------

    def deliver_notices(self, claim: Claim) -> Claim:
        """Rule 16: send the partner the notices the claim holds; sent ones leave the outbox."""
        return self.notices.deliver(claim)

    def redeliver(self, claim: Claim) -> Claim:
        """A consent email that never reached SES: a new link (the old one was never delivered), sent once."""
        if not claim.consent_email_stuck or claim.effective_state(self.clock.now()).is_terminal:
            return claim
        email = claim.consent_email
        attempts = email.attempts + 1 if email else 1
        if attempts >= self.max_attempts:
            return self._record_undelivered(claim, "gave_up")  # poison: never retried forever
        token = new_token()
        record = ConsentTokenRecord(
            token_hash=token_hash(token),
            claim_id=claim.claim_id,
            partner_id=claim.partner_id,
            expires_at=claim.consent_deadline,
            page=self._page_context(claim, self._claim_context(claim), claim.customer_contact.language),
        )
        now = self.clock.now()
        pending = EmailDelivery(
            status=EmailStatus.PENDING, to=claim.customer_contact.email, updated_at=now, attempts=attempts
        )
        after = claim.model_copy(
            update={"consent_token_hash": record.token_hash, "consent_email": pending, "version": claim.version + 1}
        )
        self.claims.apply(ClaimChange(before=claim, after=after, put_token=record))
        return self._deliver(after, token, record)
