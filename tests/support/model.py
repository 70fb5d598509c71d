"""A reference model of the claims service, for the stateful property test (tests/moto/test_stateful.py).

It restates SPEC rules 3-5, 10-19 in the plainest terms, over the demo reference data, and imports nothing
from production code: what it expects comes from the specification, not from the implementation.

The model knows, for every claim, its *stored* state (what the table holds, which moves only when a handler
or the sweep writes) and its *effective* state at the model's clock (rule 17: a claim past its deadline is
expired on every read and write, even before the sweep writes it). Every method that predicts an answer
returns an ``Expect``; every method named ``apply_*`` or ``record_*`` moves the model after the service
answered as expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

PENDING = "pending_consent"
REQUESTED = "consent_requested"
GRANTED = "consent_granted"
SUBMITTED = "submitted"
COMPLETED = "completed"
REJECTED = "rejected"
CANCELLED = "cancelled"
EXPIRED = "expired"
DECLINED = "consent_declined"

ACTIVE = frozenset({PENDING, REQUESTED, GRANTED, SUBMITTED})
TERMINAL = frozenset({COMPLETED, REJECTED, CANCELLED, EXPIRED, DECLINED})
AWAITING = frozenset({PENDING, REQUESTED})
CANCELLABLE = frozenset({PENDING, REQUESTED, GRANTED})

RESEND_INTERVAL = timedelta(hours=1)  # rule 14
MAX_SENDS = 6  # rule 14: the first request and five resends
REMINDER_DAYS = (7, 1)  # rule 17, the default

# The 422 reasons of rule 5 in the order a reader of the rule lists them; the first one found is the code.
LOCATION_NOT_ENROLLED = "location_not_enrolled"
LOCATION_NOT_ELIGIBLE = "location_not_eligible"
ENGAGEMENT_CLOSED = "engagement_closed"
IDENTIFIER_TYPE_NOT_ACCEPTED = "identifier_type_not_accepted"
CUSTOMER_NOT_FOUND = "customer_not_found"
CRITERIA_NOT_MET = "criteria_not_met"
LIMIT_REACHED = "active_claim_limit_reached"
DUPLICATE = "duplicate_claim"


@dataclass(frozen=True)
class Expect:
    """The answers the specification allows: statuses and, for errors, problem codes."""

    statuses: frozenset[int]
    codes: frozenset[str | None] = frozenset({None})

    @classmethod
    def ok(cls, status: int = 200) -> Expect:
        return cls(frozenset({status}))

    @classmethod
    def error(cls, status: int, code: str | None) -> Expect:
        return cls(frozenset({status}), frozenset({code}))

    @classmethod
    def deadline_passed(cls) -> Expect:
        """An action whose own deadline passed: 410, whether or not the sweep stored the expiry (rules 17, 19)."""
        return cls.error(410, "deadline_passed")

    @property
    def succeeds(self) -> bool:
        return self.statuses <= {200, 201}

    def allows(self, status: int, code: str | None) -> bool:
        if status not in self.statuses:
            return False
        return status in (200, 201) or code in self.codes

    def __str__(self) -> str:
        return f"{sorted(self.statuses)} {sorted(str(c) for c in self.codes)}"


@dataclass(frozen=True)
class EngagementRules:
    engagement_id: str
    identifier_types: frozenset[str]
    consent_window: timedelta
    submission_window: timedelta
    limit: int
    segments: frozenset[str] | None
    countries: frozenset[str] | None
    opens_on: date
    closes_on: date
    referral_min: Decimal | None  # None: referrals disabled

    @classmethod
    def of(cls, raw: dict[str, Any]) -> EngagementRules:
        criteria = raw.get("criteria") or {}
        referral = raw.get("referral") or {}
        return cls(
            engagement_id=raw["engagement_id"],
            identifier_types=frozenset(raw["identifier_types"]),
            consent_window=timedelta(days=raw["consent_window_days"]),
            submission_window=timedelta(days=raw["submission_window_days"]),
            limit=raw["max_active_claims_per_customer"],
            segments=frozenset(criteria["segments"]) if criteria.get("segments") is not None else None,
            countries=frozenset(criteria["countries"]) if criteria.get("countries") is not None else None,
            opens_on=date.fromisoformat(raw["opens_on"]),
            closes_on=date.fromisoformat(raw["closes_on"]),
            referral_min=Decimal(str(referral["min_deal_size_usd"])) if referral.get("enabled") else None,
        )


@dataclass
class ModelClaim:
    claim_id: str
    partner_id: str
    engagement_id: str
    customer_key: str
    created_at: datetime
    consent_deadline: datetime
    customer_email: str
    partner_email: str
    state: str = PENDING  # as stored
    submission_deadline: datetime | None = None
    deal_size: Decimal | None = None
    sends: int = 0
    last_sent_at: datetime | None = None
    token: str | None = None  # the link of the latest consent email
    old_tokens: list[str] = field(default_factory=list)
    reminders: list[int] = field(default_factory=list)  # still to send
    history: list[str] = field(default_factory=lambda: [PENDING])  # the "to" of every stored entry
    referral: bool = False

    @property
    def deadline(self) -> datetime | None:
        if self.state in AWAITING:
            return self.consent_deadline
        if self.state == GRANTED:
            return self.submission_deadline
        return None

    def effective(self, now: datetime) -> str:
        """Rule 17: expired at the deadline, exactly, whatever is stored."""
        deadline = self.deadline
        if self.state in ACTIVE and deadline is not None and now >= deadline:
            return EXPIRED
        return self.state

    def expired_from(self, now: datetime) -> str | None:
        """The state the claim left by passing its deadline, swept or not; None when it did not expire."""
        if self.effective(now) != EXPIRED:
            return None
        return self.state if self.state != EXPIRED else self.history[-2]

    def lapsed(self, now: datetime) -> bool:
        """Past its deadline but not yet stored as expired."""
        return self.state in ACTIVE and self.effective(now) == EXPIRED

    def shown_history(self, now: datetime) -> list[str]:
        """The history a reader sees: the stored one, and the expiry when it is due but not yet written."""
        return [*self.history, EXPIRED] if self.lapsed(now) else list(self.history)

    def store(self, state: str) -> None:
        self.state = state
        self.history.append(state)


@dataclass(frozen=True)
class Customer:
    """A way a partner names a customer when adding it (rule 7)."""

    label: str
    identifier_type: str
    value: str
    email: str
    tenant_mismatch_reason: str | None = None

    def identifier(self) -> dict[str, str]:
        return {"type": self.identifier_type, "value": self.value}


@dataclass
class Model:
    reference: dict[str, Any]
    now: datetime
    partner_emails: dict[str, str]
    claims: dict[str, ModelClaim] = field(default_factory=dict)
    known: dict[tuple[str, str], str] = field(default_factory=dict)  # (partner, key) -> customer email

    def __post_init__(self) -> None:
        self.engagements = {e["engagement_id"]: EngagementRules.of(e) for e in self.reference["engagements"]}
        self.locations = {loc["location_id"]: loc for loc in self.reference["locations"]}
        self.records = {f"{c['identifier_type']}:{c['value'].lower()}": c for c in self.reference["customers"]}
        self.domains = {d["domain"]: d["tenant_id"].lower() for d in self.reference["domains"]}

    # ------------------------------------------------------------------ reads

    def live(self, engagement_id: str, customer_key: str) -> list[ModelClaim]:
        """Claims that count toward the limit now: active and not past their deadline (rules 5, 17, 18)."""
        return [
            c
            for c in self.claims.values()
            if (c.engagement_id, c.customer_key) == (engagement_id, customer_key) and c.effective(self.now) in ACTIVE
        ]

    def key_of(self, identifier_type: str, value: str) -> str | None:
        """Rule 3: a domain is checked as its tenant; anything else as given. None: a domain with no tenant."""
        value = value.strip().lower()
        if identifier_type == "domain":
            tenant = self.domains.get(value)
            return f"tenant_id:{tenant}" if tenant else None
        return f"{identifier_type}:{value}"

    def tenant_of_email(self, email: str) -> str | None:
        return self.domains.get(email.rpartition("@")[2].lower())

    # ------------------------------------------------------------------ add and claim (rules 1-11)

    def _reasons(self, location_id: str, engagement_id: str, given_type: str, key: str | None) -> list[str]:
        engagement = self.engagements[engagement_id]
        location = self.locations[location_id]
        today = self.now.date()
        reasons = []
        if not location["enrolled_in_mci"]:
            reasons.append(LOCATION_NOT_ENROLLED)
        if engagement_id not in location["eligible_engagements"]:
            reasons.append(LOCATION_NOT_ELIGIBLE)
        if not engagement.opens_on <= today <= engagement.closes_on:
            reasons.append(ENGAGEMENT_CLOSED)
        if given_type not in engagement.identifier_types:
            return [*reasons, IDENTIFIER_TYPE_NOT_ACCEPTED]
        record = self.records.get(key) if key else None
        if record is None:
            return [*reasons, CUSTOMER_NOT_FOUND]
        if engagement.segments is not None and record["segment"] not in engagement.segments:
            reasons.append(CRITERIA_NOT_MET)
        if engagement.countries is not None and record["country"] not in engagement.countries:
            reasons.append(CRITERIA_NOT_MET)
        if reasons:
            return reasons
        live = self.live(engagement_id, key) if key else []
        if len(live) >= engagement.limit:
            reasons.append(LIMIT_REACHED)
        if any(c.partner_id == self._partner_of(location_id) for c in live):
            reasons.append(DUPLICATE)
        return reasons

    def _partner_of(self, location_id: str) -> str:
        return str(self.locations[location_id]["partner_id"])

    def _verdict(self, location_id: str, engagement_ids: list[str], given_type: str, key: str | None) -> Expect:
        """Rules 5, 10, 11: 422 with the first rule reason, 409 when only limits stand in the way, else 201."""
        reasons = [r for e in engagement_ids for r in self._reasons(location_id, e, given_type, key)]
        hard = [r for r in reasons if r not in (LIMIT_REACHED, DUPLICATE)]
        if hard:
            return Expect.error(422, hard[0])
        if reasons:
            return Expect.error(409, DUPLICATE if DUPLICATE in reasons else LIMIT_REACHED)
        return Expect.ok(201)

    def expect_add(self, location_id: str, customer: Customer, engagement_ids: list[str]) -> Expect:
        key = self.key_of(customer.identifier_type, customer.value)
        tenant = customer.value.strip().lower()
        mismatch = customer.identifier_type == "tenant_id" and self.tenant_of_email(customer.email) != tenant
        if mismatch and not customer.tenant_mismatch_reason:
            return Expect.error(422, "tenant_mismatch_reason_required")  # rule 4
        return self._verdict(location_id, engagement_ids, customer.identifier_type, key)

    def expect_claim(self, partner_id: str, location_id: str, customer_key: str, engagement_ids: list[str]) -> Expect:
        """Rule 9: only the partner's own known customers; another partner's is not found."""
        if (partner_id, customer_key) not in self.known:
            return Expect.error(404, "not_found")
        return self._verdict(location_id, engagement_ids, customer_key.partition(":")[0], customer_key)

    def record_created(
        self, partner_id: str, customer_key: str, claims: list[tuple[str, str]], customer_email: str
    ) -> None:
        """New claims (id, engagement): pending consent, deadline = now + consent window (rule 12).

        The write that adds them also stores the expiry of the overdue claims it stops counting (rule 17).
        """
        for _, engagement_id in claims:
            for old in self.claims.values():
                if (old.engagement_id, old.customer_key) == (engagement_id, customer_key) and old.lapsed(self.now):
                    old.store(EXPIRED)
        for claim_id, engagement_id in claims:
            engagement = self.engagements[engagement_id]
            deadline = self.now + engagement.consent_window
            self.claims[claim_id] = ModelClaim(
                claim_id=claim_id,
                partner_id=partner_id,
                engagement_id=engagement_id,
                customer_key=customer_key,
                created_at=self.now,
                consent_deadline=deadline,
                customer_email=customer_email,
                partner_email=self.partner_emails[partner_id],
                reminders=[d for d in REMINDER_DAYS if deadline - timedelta(days=d) > self.now],
            )

    # ------------------------------------------------------------------ consent (rules 12-16)

    def expect_consent(self, claim: ModelClaim, body: dict[str, Any]) -> Expect:
        if claim.expired_from(self.now) in AWAITING:
            return Expect.deadline_passed()
        if claim.effective(self.now) not in AWAITING:
            return Expect.error(409, "invalid_state")
        deal = body.get("deal_size_usd")
        if claim.deal_size is not None and deal is not None and Decimal(str(deal)) != claim.deal_size:
            return Expect.error(409, "deal_size_locked")
        if claim.state == PENDING:
            if deal is None or body.get("disclaimer_accepted") is not True:
                return Expect.error(422, "validation_error")
            return Expect.ok()
        if claim.sends >= MAX_SENDS:
            return Expect.error(409, "resend_limit")
        if claim.last_sent_at is not None and self.now - claim.last_sent_at < RESEND_INTERVAL:
            return Expect.error(409, "resend_limit")
        return Expect.ok()

    def apply_consent(self, claim: ModelClaim, body: dict[str, Any], token: str) -> None:
        if claim.state == PENDING:
            claim.deal_size = Decimal(str(body["deal_size_usd"]))
            minimum = self.engagements[claim.engagement_id].referral_min
            claim.referral = minimum is not None and claim.deal_size >= minimum
            claim.store(REQUESTED)
        contact = body.get("customer_contact")
        if contact is not None:
            claim.customer_email = contact["email"]
        claim.sends += 1
        claim.last_sent_at = self.now
        if claim.token is not None:
            claim.old_tokens.append(claim.token)
        claim.token = token

    def link_is_live(self, claim: ModelClaim, token: str) -> bool:
        """Rule 15: only the latest link, until the consent deadline or first use."""
        return token == claim.token and claim.state == REQUESTED and self.now < claim.consent_deadline

    def apply_decision(self, claim: ModelClaim, decision: str) -> None:
        """Rule 16."""
        claim.old_tokens.append(claim.token or "")
        claim.token = None
        if decision == "accept":
            claim.submission_deadline = self.now + self.engagements[claim.engagement_id].submission_window
            claim.store(GRANTED)
            self.known[(claim.partner_id, claim.customer_key)] = claim.customer_email
        else:
            claim.store(DECLINED)

    # ------------------------------------------------------------------ lifecycle (rules 18-19)

    def expect_submit(self, claim: ModelClaim) -> Expect:
        if claim.expired_from(self.now) == GRANTED:
            return Expect.deadline_passed()
        return Expect.ok() if claim.effective(self.now) == GRANTED else Expect.error(409, "invalid_state")

    def expect_cancel(self, claim: ModelClaim) -> Expect:
        return Expect.ok() if claim.effective(self.now) in CANCELLABLE else Expect.error(409, "invalid_state")

    def expect_review(self, claim: ModelClaim) -> Expect:
        return Expect.ok() if claim.effective(self.now) == SUBMITTED else Expect.error(409, "invalid_state")

    # ------------------------------------------------------------------ the sweep (rule 17)

    def sweep(self) -> tuple[list[str], list[str]]:
        """Store every due expiry; send each due reminder once (one email per claim and run).

        Returns the expired claim ids and the partner emails reminded.
        """
        expired, reminded = [], []
        for claim in self.claims.values():
            if claim.lapsed(self.now):
                claim.store(EXPIRED)
                expired.append(claim.claim_id)
                continue
            if claim.state not in AWAITING:
                continue
            due = [d for d in claim.reminders if claim.consent_deadline - timedelta(days=d) <= self.now]
            if due:
                claim.reminders = [d for d in claim.reminders if d not in due]
                reminded.append(claim.partner_email)
        return expired, reminded
