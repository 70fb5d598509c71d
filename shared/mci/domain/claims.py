"""The claim: one customer nominated by one partner location for one engagement, and its state machine."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from mci.domain.clock import isoformat
from mci.domain.errors import Conflict
from mci.domain.identifiers import IdentifierType, normalise_domain
from mci.domain.money import PositiveUsd, Usd
from mci.domain.text import SingleLine


class ClaimState(StrEnum):
    PENDING_CONSENT = "pending_consent"
    CONSENT_REQUESTED = "consent_requested"
    CONSENT_GRANTED = "consent_granted"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    CONSENT_DECLINED = "consent_declined"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        ClaimState.COMPLETED,
        ClaimState.REJECTED,
        ClaimState.CANCELLED,
        ClaimState.EXPIRED,
        ClaimState.CONSENT_DECLINED,
    }
)
ACTIVE_STATES = frozenset(set(ClaimState) - TERMINAL_STATES)
AWAITING_CONSENT = frozenset({ClaimState.PENDING_CONSENT, ClaimState.CONSENT_REQUESTED})

# Rule 18: every allowed move. Terminal states have none.
TRANSITIONS: dict[ClaimState, frozenset[ClaimState]] = {
    ClaimState.PENDING_CONSENT: frozenset({ClaimState.CONSENT_REQUESTED, ClaimState.CANCELLED, ClaimState.EXPIRED}),
    ClaimState.CONSENT_REQUESTED: frozenset(
        {
            ClaimState.CONSENT_GRANTED,
            ClaimState.CONSENT_DECLINED,
            ClaimState.CANCELLED,
            ClaimState.EXPIRED,
        }
    ),
    ClaimState.CONSENT_GRANTED: frozenset({ClaimState.SUBMITTED, ClaimState.CANCELLED, ClaimState.EXPIRED}),
    ClaimState.SUBMITTED: frozenset({ClaimState.COMPLETED, ClaimState.REJECTED}),
    **{state: frozenset() for state in TERMINAL_STATES},
}


class Origin(StrEnum):
    ADDED = "added"
    CLAIMED = "claimed"


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine]
# SES sends to 7-bit ASCII local parts only (rule 28): RFC 5322 atoms separated by single dots, no quoting.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _valid_email(text: str) -> str:
    local, _, domain = text.rpartition("@")
    normal = normalise_domain(domain)
    if not local or normal is None:
        raise ValueError("is not a valid email address")
    if not _LOCAL_PART.fullmatch(local):
        raise ValueError("cannot be delivered: the part before @ must be ASCII letters, digits or symbols")
    return f"{local}@{normal}"


# A pragmatic check (no DNS): one @, a local part SES delivers to, a valid domain, normalised to IDNA lower case.
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s<>\"]{1,64}@[^@\s<>\"]+$"),
    AfterValidator(_valid_email),
    SingleLine,
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{6,20}$"), SingleLine]


Language = Literal["en", "es"]  # of the consent email and page


class Model(BaseModel):
    # Responses dump these whole: their response schemas require every field (requests keep the defaults). Stored
    # claims and contacts: an error names the field, never quotes the value (a contact's data may reach a log line).
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True, hide_input_in_errors=True
    )


class CustomerContact(Model):
    name: Text
    email: Email
    phone: Phone | None = None
    language: Language = "en"


class PartnerContact(Model):
    name: Text
    email: Email
    phone: Phone | None = None


class ClaimIdentifier(Model):
    type: IdentifierType
    value: str
    resolved_tenant_id: str | None = None


RESEND_INTERVAL = timedelta(hours=1)  # rule 14: at most once an hour
MAX_RESENDS = 5  # rule 14: five resends after the first email


class ConsentRequests(Model):
    count: int = 0
    last_sent_at: datetime | None = None


class EmailStatus(StrEnum):
    PENDING = "pending"  # written, not yet handed to SES
    SENT = "sent"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    REJECTED = "rejected"  # SES refused it for good (rule 29): the partner fixes the address and resends
    FAILED = "failed"  # SES kept refusing it (an operator problem) until the outbox gave up


# A consent email in one of these never reached the customer: the partner's next request sends it, at once.
UNDELIVERED = frozenset({EmailStatus.PENDING, EmailStatus.REJECTED, EmailStatus.FAILED})


class EmailDelivery(Model):
    """Where the last consent email stands, so the partner can fix a wrong address."""

    status: EmailStatus
    to: str
    message_id: str | None = None
    sent_at: datetime | None = None
    updated_at: datetime
    attempts: int = 0  # the sweep's redeliveries so far (bounded by the outbox's max attempts)


class ReminderSent(Model):
    days_before: int
    at: datetime


class PendingNotice(Model):
    """An email to the partner written in the same transaction as the change it reports (an outbox)."""

    kind: Literal["consent_accepted", "consent_declined", "consent_reminder"]
    engagement_name: str
    since: datetime
    attempts: int = 0
    days_before: int | None = None  # a reminder's: how many days before the consent deadline
    correlation_id: str | None = None  # of the request or sweep run that queued it: on the email's SES tag

    def next_attempt(self) -> datetime:
        return self.since + timedelta(minutes=min(2**self.attempts, 60)) if self.attempts else self.since


CONSENT_EMAIL_RETRY = timedelta(minutes=5)
# A redelivery keeps at most this many earlier links live beside its new one (``Claim.links_kept_for``): each is a
# token item its claim's changes delete with the current one, within a transaction's 100 items.
MAX_KEPT_LINKS = 4


class EmailFailure(Model):
    """An email that will not be sent (rule 29), shown on the claim so the partner can act on it.

    ``reason``: ``email_rejected`` (SES refused the address or the message for good) or ``gave_up`` (SES
    kept failing until the outbox's attempts ran out: an operator problem).
    """

    kind: str
    to: str
    reason: Literal["email_rejected", "gave_up"]
    at: datetime
    attempts: int = 1


class Decision(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"


class ConsentDecision(Model):
    decision: Decision
    at: datetime
    channel: str = "consent_link"


class HistoryEntryBase(Model):
    """One change of the claim: when, who, from which state to which, why, and the API request that made it."""

    at: datetime
    actor: str
    from_: ClaimState | None = Field(default=None, alias="from", serialization_alias="from")
    to: ClaimState
    reason: str | None = None
    request_id: str | None = None  # the API request that made the change; None for the system's moves

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_serialization_defaults_required=True,
        hide_input_in_errors=True,
    )


class HistoryEntry(HistoryEntryBase):
    """A history entry as stored: the partner's view (``HistoryEntryBase``) and who wrote it, for operators."""

    # The invocation that wrote the entry, as its log lines carry it (docs/operations.md): the API request id, the
    # sweep run's, the adding request's for an overdue claim it expired. Not in the partner's view.
    correlation_id: str | None = None


class ConsentEvidence(Model):
    """One consent email as sent: the exact template version and the terms locked at that moment."""

    sent_at: datetime
    to: str
    # Read back as stored; the schema says which languages the service writes.
    language: str = Field(json_schema_extra={"enum": list(get_args(Language))})
    template_version: str
    message_id: str
    deal_size_usd: PositiveUsd | None = None
    hours: int | None = None
    proposed_payment_usd: Usd | None = None


class Claim(Model):
    claim_id: str
    partner_id: str
    location_id: str
    engagement_id: str
    friendly_name: Text
    identifier: ClaimIdentifier
    customer_key: str
    origin: Origin
    state: ClaimState
    customer_contact: CustomerContact
    partner_contact: PartnerContact
    tenant_mismatch_reason: str | None = None
    hours: int | None = None
    proposed_payment_usd: Usd | None = None
    deal_size_usd: PositiveUsd | None = None
    consent_deadline: datetime
    submission_deadline: datetime | None = None
    consent_requests: ConsentRequests = Field(default_factory=ConsentRequests)
    consent_email: EmailDelivery | None = None
    # The request that queued the current consent email (its correlation id): on its SES tag, its resend's event.
    consent_email_correlation_id: str | None = None
    consent_token_hash: str | None = None
    # Links of earlier consent emails to the same address that SES may have taken (sent, its record lost): live
    # beside the current one until consent is answered, the claim ends or a resend replaces them all (rule 15).
    kept_token_hashes: list[str] = Field(default_factory=list)
    # The current link when SES certainly took nothing for it (throttled, failing): a redelivery may drop it.
    unsent_token_hash: str | None = None
    consent_decision: ConsentDecision | None = None
    consent_evidence: list[ConsentEvidence] = Field(default_factory=list)
    pending_notices: list[PendingNotice] = Field(default_factory=list)
    email_failures: list[EmailFailure] = Field(default_factory=list)
    submission_notes: str | None = None
    pending_reminders: list[int] = Field(default_factory=list)
    reminders_sent: list[ReminderSent] = Field(default_factory=list)
    referral_id: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 1
    history: list[HistoryEntry] = Field(default_factory=list)

    def effective_state(self, now: datetime) -> ClaimState:
        """Rule 17: a claim past its deadline is expired on every read, even before the sweep."""
        deadline = self.deadline
        if deadline is not None and now >= deadline and not self.state.is_terminal:
            return ClaimState.EXPIRED
        return self.state

    def expired_from(self, now: datetime) -> ClaimState | None:
        """The state a claim left by passing its deadline, swept or not (rule 17); None when it did not expire.

        An action whose own deadline passed is a 410, whether or not the sweep stored the expiry yet.
        """
        if self.effective_state(now) is not ClaimState.EXPIRED:
            return None
        if self.state is not ClaimState.EXPIRED:
            return self.state
        return self.history[-1].from_ if self.history else None

    @property
    def deadline(self) -> datetime | None:
        """The deadline that matters in the current state, if any."""
        if self.state in AWAITING_CONSENT:
            return self.consent_deadline
        if self.state is ClaimState.CONSENT_GRANTED:
            return self.submission_deadline
        return None

    @property
    def position(self) -> str:
        """Where the claim sorts in a partner's list, newest first: creation time, then id."""
        return f"{isoformat(self.created_at)}#{self.claim_id}"

    def reminder_times(self) -> dict[int, datetime]:
        """Rule 17: reminders still to send, by days before the consent deadline, while consent is pending."""
        if self.state not in AWAITING_CONSENT:
            return {}
        return {d: self.consent_deadline - timedelta(days=d) for d in self.pending_reminders}

    @property
    def consent_email_stuck(self) -> bool:
        """A consent email written but never handed to SES (the sender failed and nobody retried)."""
        email = self.consent_email
        return self.state is ClaimState.CONSENT_REQUESTED and email is not None and email.status is EmailStatus.PENDING

    @property
    def live_token_hashes(self) -> frozenset[str]:
        """The hashes of the consent links that open the page: the current one and those kept beside it."""
        if self.consent_token_hash is None:
            return frozenset()
        return frozenset({self.consent_token_hash, *self.kept_token_hashes})

    def links_kept_for(self, to: str) -> list[str]:
        """The links a redelivery of the consent email to ``to`` keeps live beside its new one: the current link
        unless SES certainly took nothing for it (``unsent_token_hash``), and those kept before, so a customer never
        holds a dead link from an email that went out (SES took it, and its record failed or was lost). None once
        the address changes (the earlier emails went to someone else); the newest ``MAX_KEPT_LINKS``."""
        email = self.consent_email
        if email is None or email.to != to or self.consent_token_hash is None:
            return []
        kept = list(self.kept_token_hashes)
        if email.status is EmailStatus.PENDING and self.unsent_token_hash != self.consent_token_hash:
            kept.append(self.consent_token_hash)
        return kept[-MAX_KEPT_LINKS:]

    @property
    def due_at(self) -> datetime | None:
        """When the sweep must next look at this claim: a pending email, the next reminder or the deadline."""
        times = [*self.reminder_times().values(), *(n.next_attempt() for n in self.pending_notices)]
        if self.deadline is not None:
            times.append(self.deadline)
        if self.consent_email_stuck and self.consent_email is not None:
            times.append(self.consent_email.updated_at + CONSENT_EMAIL_RETRY)
        return min(times) if times else None

    def transition(
        self,
        to: ClaimState,
        *,
        at: datetime,
        actor: str,
        reason: str | None = None,
        request_id: str | None = None,
        correlation_id: str | None = None,
        **changes: object,
    ) -> Claim:
        """The claim after moving to ``to``, with the move in its history; refuses moves rule 18 forbids.

        ``correlation_id``: the invocation's (its log lines'); an API request's is its ``request_id``."""
        if to not in TRANSITIONS[self.state]:
            raise Conflict(
                "invalid_state",
                f"A claim in state {self.state.value} cannot move to {to.value}",
                state=self.state.value,
            )
        entry = HistoryEntry(
            at=at,
            actor=actor,
            from_=self.state,
            to=to,
            reason=reason,
            request_id=request_id,
            correlation_id=correlation_id if correlation_id is not None else request_id,
        )
        if changes.get("consent_token_hash", self.consent_token_hash) is None:
            changes["kept_token_hashes"] = []  # the links kept beside the current one end with it, in this write
        return self.model_copy(
            update={
                "state": to,
                "updated_at": at,
                "version": self.version + 1,
                "history": [*self.history, entry],
                **changes,
            }
        )

    def as_seen_at(self, now: datetime) -> Claim:
        """The claim as a reader sees it at ``now``: expired in place when its deadline has passed."""
        effective = self.effective_state(now)
        if effective is self.state:
            return self
        return self.expired_at_deadline().model_copy(update={"version": self.version})

    def expired_at_deadline(self, correlation_id: str | None = None) -> Claim:
        """Rule 17: the one way a claim expires, so a read before the sweep shows what the sweep will write.

        ``correlation_id``: the invocation that writes the expiry (a read passes none); only operators see it."""
        deadline = self.deadline
        assert deadline is not None
        reason = "submission deadline passed" if self.state is ClaimState.CONSENT_GRANTED else "consent deadline passed"
        return self.transition(
            ClaimState.EXPIRED,
            at=deadline,
            actor="system",
            reason=reason,
            correlation_id=correlation_id,
            consent_token_hash=None,
        )


def reminders_for(created_at: datetime, consent_deadline: datetime, days_before: list[int]) -> list[int]:
    """The reminders a new claim will get: those that fall after its creation."""
    return sorted({d for d in days_before if consent_deadline - timedelta(days=d) > created_at}, reverse=True)


def consent_deadline_for(created_at: datetime, consent_window_days: int) -> datetime:
    """Rule 12: creation time plus the engagement's consent window; resending never moves it."""
    return created_at + timedelta(days=consent_window_days)
