"""The outbox (rules 13, 16, 17 and 29): the emails a claim change leaves to send, sent after it, retried by the
sweep, and given up for good when SES refuses them or keeps failing. The customer's consent email (with its link)
and the partner's notices and reminders.

Exactly once from the partner's point of view: an email leaves the outbox in the write that follows its send,
so a crash between the two sends it again only if SES's answer was lost (nobody can know then).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from mci.domain.claims import (
    AWAITING_CONSENT,
    Claim,
    ConsentEvidence,
    EmailDelivery,
    EmailFailure,
    EmailStatus,
    PendingNotice,
)
from mci.domain.clock import Clock
from mci.domain.consent_token import new_token, token_hash
from mci.domain.errors import DependencyUnavailable, EmailRejected, SendingThrottled, SendOutcomeUnknown
from mci.domain.ports import (
    ClaimChange,
    ClaimChanges,
    ConcurrentChange,
    ConsentPageContext,
    ConsentTokenRecord,
    EmailMessage,
    Found,
    Lookup,
    Lookups,
    Mailer,
)
from mci.domain.retry import DEFAULT_RETRY, RetryPolicy, retry_on_conflict
from mci.emails.render import long_date, render

DEFAULT_MAX_ATTEMPTS = 8

_Key = tuple[str, datetime]


def _key(notice: PendingNotice) -> _Key:
    return (notice.kind, notice.since)


def claim_email(
    claim_id: str, kind: str, language: str, to: str, values: Mapping[str, str], *, correlation_id: str | None = None
) -> tuple[EmailMessage, str]:
    """An email about a claim, rendered from its template: the message, and the version of the text it holds.

    Tagged with the claim (SES feedback finds it by that) and the correlation id of the request that queued it."""
    rendered = render(kind, language, dict(values))
    tags = {"claim_id": claim_id, "kind": kind}
    if correlation_id:
        tags["correlation_id"] = correlation_id
    message = EmailMessage(to=to, subject=rendered.subject, text=rendered.text, html=rendered.html, tags=tags)
    return message, rendered.version


def claim_context(lookups: Lookups, claim: Claim) -> Found:
    """The claim's engagement and location, read together: what the consent email and page name."""
    return lookups.look_up(Lookup(location_id=claim.location_id, engagement_ids=(claim.engagement_id,)))


def new_link(claim: Claim, found: Found, language: str) -> tuple[str, ConsentTokenRecord]:
    """A fresh consent link (rule 15) and its record as stored: the token's hash and what the page shows."""
    location = found.location
    engagement = found.engagements.get(claim.engagement_id)
    token = new_token()
    page = ConsentPageContext(
        language=language,
        partner_name=location.name if location else claim.partner_id,
        engagement_name=engagement.name if engagement else claim.engagement_id,
        customer_name=claim.friendly_name,
        submission_window_days=engagement.submission_window_days if engagement else 90,
    )
    record = ConsentTokenRecord(
        token_hash=token_hash(token),
        claim_id=claim.claim_id,
        partner_id=claim.partner_id,
        expires_at=claim.consent_deadline,
        page=page,
    )
    return token, record


@dataclass
class Notices:
    """Sends a claim's pending notices and takes the sent, refused and given-up ones out of its outbox."""

    claims: ClaimChanges
    mailer: Mailer
    clock: Clock
    retry: RetryPolicy = DEFAULT_RETRY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    sleep: Callable[[float], None] = time.sleep

    def deliver(self, claim: Claim) -> Claim:
        if not claim.pending_notices:
            return claim
        sent: set[_Key] = set()
        failed: set[_Key] = set()
        waiting: set[_Key] = set()  # not tried: SES throttled (its sending rate), no attempt spent
        dropped: dict[_Key, EmailFailure] = {}
        for position, notice in enumerate(claim.pending_notices):
            if notice.kind == "consent_reminder" and claim.state not in AWAITING_CONSENT:
                sent.add(_key(notice))  # consent was answered or the claim ended: the reminder has no point
                continue
            try:
                self._send(claim, notice)
            except EmailRejected:
                dropped[_key(notice)] = self._failure(claim, notice, "email_rejected")
                continue
            except SendingThrottled:
                waiting = {_key(n) for n in claim.pending_notices[position:]}
                break  # SES takes nothing for now: this and the later notices wait
            except DependencyUnavailable:
                if notice.attempts + 1 >= self.max_attempts:
                    dropped[_key(notice)] = self._failure(claim, notice, "gave_up")  # poison: never retried forever
                else:
                    failed.add(_key(notice))
                continue
            sent.add(_key(notice))
        if not (sent or failed or dropped or any(kind == "consent_reminder" for kind, _ in waiting)):
            return claim  # nothing sent, nothing to put back: no write
        # Sent notices must leave the outbox, or the sweep sends them again: a throttled write is tried again,
        # and a concurrent change is re-read and the sent ones taken out of what it left.
        latest = claim

        def write() -> Claim:
            nonlocal latest
            after = self._without(latest, sent, failed, waiting, dropped)
            try:
                self.claims.apply(ClaimChange(before=latest, after=after))
            except ConcurrentChange:
                try:
                    current = self.claims.get_claim(latest.claim_id)
                except DependencyUnavailable:
                    return latest
                if current is None:
                    return latest
                latest = current
                raise
            return after

        try:
            return retry_on_conflict(write, self.retry, self.sleep, also=(DependencyUnavailable,))
        except (ConcurrentChange, DependencyUnavailable):
            return latest  # the sweep sends what is still pending: at least once, never lost

    @staticmethod
    def _without(
        claim: Claim, sent: set[_Key], failed: set[_Key], waiting: set[_Key], dropped: dict[_Key, EmailFailure]
    ) -> Claim:
        """The claim after a delivery: sent and dropped notices out, failed ones with one more attempt, waiting
        ones as they were. A reminder on a claim that no longer awaits consent leaves the outbox whatever happened
        to it (it has no point), even behind a throttled notice, or when the claim was re-read after a change."""
        present = {_key(n) for n in claim.pending_notices}
        if claim.state not in AWAITING_CONSENT:
            sent = sent | {_key(n) for n in claim.pending_notices if n.kind == "consent_reminder"}
        # A reminder SES could not take (failing or throttled) goes back among the claim's pending reminders, due
        # again at once: the sweep's next run marks and sends it anew, until the consent deadline ends its point.
        put_back = {
            _key(n)
            for n in claim.pending_notices
            if _key(n) in (failed | waiting) - sent and n.kind == "consent_reminder"
        }
        marked_at = {since for _, since in put_back}
        remaining = [
            n.model_copy(update={"attempts": n.attempts + 1}) if _key(n) in failed else n
            for n in claim.pending_notices
            if _key(n) not in sent and _key(n) not in dropped and _key(n) not in put_back
        ]
        failures = [f for k, f in dropped.items() if k in present]
        days = {r.days_before for r in claim.reminders_sent if r.at in marked_at}
        return claim.model_copy(
            update={
                "pending_notices": remaining,
                "email_failures": [*claim.email_failures, *failures],
                "pending_reminders": sorted({*claim.pending_reminders, *days}, reverse=True),
                "reminders_sent": [r for r in claim.reminders_sent if r.at not in marked_at],
                "version": claim.version + 1,
            }
        )

    def _failure(self, claim: Claim, notice: PendingNotice, reason: str) -> EmailFailure:
        return EmailFailure.model_validate(
            {
                "kind": notice.kind,
                "to": claim.partner_contact.email,
                "reason": reason,
                "at": self.clock.now(),
                "attempts": notice.attempts + 1,
            }
        )

    def _send(self, claim: Claim, notice: PendingNotice) -> None:
        message, _ = claim_email(
            claim.claim_id,
            notice.kind,
            "en",
            claim.partner_contact.email,
            {
                "partner_contact_name": claim.partner_contact.name,
                "friendly_name": claim.friendly_name,
                "engagement_name": notice.engagement_name,
                "decided_on": long_date(notice.since, "en"),
                "submission_deadline": long_date(claim.submission_deadline, "en") if claim.submission_deadline else "",
                "deadline": long_date(claim.consent_deadline, "en"),
                "days_before": str(notice.days_before or ""),
                "claim_id": claim.claim_id,
                "state": claim.state.value,
            },
            correlation_id=notice.correlation_id,
        )
        self.mailer.send(message)


@dataclass
class ConsentOutbox:
    """What the sweep and the consent use cases send after their change: the customer's consent email (sent,
    recorded, redelivered with a new link, or given up) and the partner's notices."""

    claims: ClaimChanges
    mailer: Mailer
    clock: Clock
    lookups: Lookups
    public_base_url: str
    retry: RetryPolicy = DEFAULT_RETRY
    sleep: Callable[[float], None] = time.sleep
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # rule 29: sends of an email before the outbox gives it up

    @property
    def notices(self) -> Notices:
        return Notices(self.claims, self.mailer, self.clock, self.retry, self.max_attempts, self.sleep)

    def through(self, mailer: Mailer) -> ConsentOutbox:
        """The same outbox sending through ``mailer`` (the sweep's, paced: mci.domain.sending)."""
        return dataclasses.replace(self, mailer=mailer)

    def deliver_notices(self, claim: Claim) -> Claim:
        """Rule 16: send the partner the notices the claim holds; sent ones leave the outbox."""
        return self.notices.deliver(claim)

    def redeliver(self, claim: Claim) -> Claim:
        """A consent email SES has not taken, as far as the claim knows: sent again with a new link, once; the old
        link stays live unless SES certainly took nothing for it (``Claim.links_kept_for``)."""
        if not claim.consent_email_stuck or claim.effective_state(self.clock.now()).is_terminal:
            return claim
        email = claim.consent_email
        attempts = email.attempts + 1 if email else 1
        if attempts >= self.max_attempts:
            return self._record_undelivered(claim, "gave_up")  # poison: never retried forever
        token, record = new_link(claim, claim_context(self.lookups, claim), claim.customer_contact.language)
        now = self.clock.now()
        pending = EmailDelivery(
            status=EmailStatus.PENDING, to=claim.customer_contact.email, updated_at=now, attempts=attempts
        )
        after = claim.model_copy(
            update={
                "consent_token_hash": record.token_hash,
                "kept_token_hashes": claim.links_kept_for(claim.customer_contact.email),
                "unsent_token_hash": None,
                "consent_email": pending,
                "version": claim.version + 1,
            }
        )
        self.claims.apply(ClaimChange(before=claim, after=after, put_token=record))
        return self.send_consent_request(after, token, record)

    def _not_sent(self, claim: Claim, *, throttled: bool) -> None:
        """SES took nothing for the claim's pending link (it throttled, failed or was unreachable): recorded in one
        conditional write, so a redelivery may drop that link (``Claim.links_kept_for``), and a throttled try gives
        its attempt back (rule 29 gives up after ``max_attempts`` sends SES failed, never after throttles).

        A concurrent change is re-read and the write made again while the claim still waits with this link; so the
        attempt is given back under contention too. If DynamoDB refuses it throughout, the link stays live (harmless:
        nobody holds it) and a throttled attempt stays counted."""
        latest = claim

        def write() -> None:
            nonlocal latest
            email = latest.consent_email
            if email is None or not latest.consent_email_stuck or latest.consent_token_hash != claim.consent_token_hash:
                return  # replaced by a newer link, or the claim moved on: nothing to record
            attempts = email.attempts - 1 if throttled and email.attempts > 0 else email.attempts
            unsent = latest.model_copy(
                update={
                    "unsent_token_hash": latest.consent_token_hash,
                    "consent_email": email.model_copy(update={"attempts": attempts}),
                    "version": latest.version + 1,
                }
            )
            try:
                self.claims.apply(ClaimChange(before=latest, after=unsent))
            except ConcurrentChange:
                current = self.claims.get_claim(latest.claim_id)
                if current is None:
                    return
                latest = current
                raise

        with contextlib.suppress(ConcurrentChange, DependencyUnavailable):
            retry_on_conflict(write, self.retry, self.sleep, also=(DependencyUnavailable,))

    def send_consent_request(self, claim: Claim, token: str, record: ConsentTokenRecord) -> Claim:
        """Rule 13: send the email after the state is written; a failure leaves it pending for a retry."""
        page = record.page
        contact = claim.customer_contact
        message, version = claim_email(
            claim.claim_id,
            "consent_request",
            page.language,
            contact.email,
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
            correlation_id=claim.consent_email_correlation_id,  # the request that queued it, also on a redelivery
        )
        try:
            message_id = self.mailer.send(message)
        except EmailRejected as error:
            try:
                self._record_undelivered(claim, "email_rejected")
            except DependencyUnavailable:
                self._not_sent(claim, throttled=False)  # unrecorded: at least its link is not kept by a redelivery
            raise error.naming("customer_contact.email") from error
        except SendingThrottled:
            self._not_sent(claim, throttled=True)
            raise
        except SendOutcomeUnknown:
            raise  # SES may have taken it: its link stays as it is, kept live by a redelivery
        except DependencyUnavailable:
            self._not_sent(claim, throttled=False)
            raise
        now = self.clock.now()
        evidence = ConsentEvidence(
            sent_at=now,
            to=contact.email,
            language=page.language,
            template_version=version,
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
        When DynamoDB refuses the record of a sent email (``evidence``) throughout, the answer is the claim as
        recorded all the same: the email went out, and the partner must not be told to retry. The stored claim still
        has it pending with its link, which a later redelivery (the sweep's, or a retry's) keeps live beside its own
        (``Claim.links_kept_for``). An email that did not go out (rejected, given up) is no such case: the refusal
        is raised (DependencyUnavailable), and nothing claims a record that is not there.
        """
        latest = claim

        def recorded(on: Claim) -> Claim:
            return on.model_copy(
                update={
                    "consent_evidence": [*on.consent_evidence, *([evidence] if evidence else [])],
                    "consent_email": delivery,
                    "email_failures": [*on.email_failures, *([failure] if failure else [])],
                    "version": on.version + 1,
                }
            )

        def write() -> Claim:
            nonlocal latest
            sent = recorded(latest)
            try:
                self.claims.apply(ClaimChange(before=latest, after=sent))
            except ConcurrentChange:
                current = self.claims.get_claim(latest.claim_id)
                if (
                    current is None
                    or not current.consent_email_stuck
                    or current.consent_token_hash != latest.consent_token_hash
                ):
                    return current or sent
                latest = current
                raise
            return sent

        try:
            return retry_on_conflict(write, self.retry, self.sleep, also=(DependencyUnavailable,))
        except ConcurrentChange:
            return latest
        except DependencyUnavailable:
            if evidence is None:
                raise
            return recorded(latest)


@dataclass
class ConsentUseCase:
    """What both sides of consent (``consent.py``, ``consent_decision.py``) work with: a claim change written under
    the one retry policy, the claim's context read in one lookup, and the outbox for the emails the change leaves."""

    claims: ClaimChanges
    clock: Clock
    lookups: Lookups  # one BatchGetItem on DynamoDB
    outbox: ConsentOutbox
    retry: RetryPolicy = DEFAULT_RETRY
    sleep: Callable[[float], None] = time.sleep
