"""Rules 1-11: previewing eligibility, quoting, and adding customers to engagements as claims."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from mci.domain.claims import (
    Claim,
    ClaimIdentifier,
    ClaimState,
    CustomerContact,
    HistoryEntry,
    Origin,
    PartnerContact,
    consent_deadline_for,
    reminders_for,
)
from mci.domain.clock import Clock
from mci.domain.commands import AddCustomer, ClaimCustomer, EligibilityCheck, PaymentQuoteRequest
from mci.domain.eligibility import Reason, ReasonCode, accepted_identifier, checked_identifier, evaluate
from mci.domain.errors import (
    Conflict,
    DependencyUnavailable,
    FieldError,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from mci.domain.identifiers import Identifier, IdentifierType, email_domain, parse_customer_key, parse_identifier
from mci.domain.lookups import SeparateLookups
from mci.domain.metrics import NO_METRICS, BusinessMetrics, creation_counts, refusal_counts
from mci.domain.ports import (
    ClaimRepository,
    ConcurrentChange,
    Found,
    LimitKeys,
    LimitSnapshot,
    Lookup,
    Lookups,
    NewClaims,
    ReferenceRepository,
)
from mci.domain.pricing import Quote, check_hours, payment_rules_of, quote
from mci.domain.principal import CLAIM_ROLES, Principal
from mci.domain.reference import CustomerRecord, Engagement, Location, PaymentType
from mci.domain.retry import DEFAULT_RETRY, RetryPolicy, retry_on_conflict

LIMIT_CODES = frozenset({ReasonCode.ACTIVE_CLAIM_LIMIT_REACHED, ReasonCode.DUPLICATE_CLAIM})


@dataclass(frozen=True, slots=True)
class EngagementVerdict:
    engagement: Engagement
    reasons: list[Reason]

    @property
    def eligible(self) -> bool:
        return not self.reasons


@dataclass(frozen=True, slots=True)
class Preview:
    eligible: list[Engagement]
    ineligible: list[EngagementVerdict]
    tenant_mismatch_reason_required: bool


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer as the checks see it: the identifier given, the one checked (rule 3), and its record."""

    given: Identifier
    checked: Identifier | None
    record: CustomerRecord | None

    @property
    def key(self) -> str:
        return (self.checked or self.given).key


@dataclass(frozen=True, slots=True)
class ClaimDraft:
    """What the claims of one add or claim request share, checked and built once, then passed whole.

    The proposed payment (rule 8) is computed here, once, from the hours, the engagement and the customer's record.
    """

    location: Location
    customer: Customer
    engagements: tuple[Engagement, ...]
    friendly_name: str
    customer_contact: CustomerContact
    partner_contact: PartnerContact
    origin: Origin
    hours: int | None
    tenant_mismatch_reason: str | None = None
    proposed_payment_usd: Decimal | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "proposed_payment_usd", self._quote())

    def _quote(self) -> Decimal | None:
        record, engagement = self.customer.record, self.engagements[0]
        if self.hours is None or record is None or self.customer.given.type not in engagement.identifier_types:
            return None
        return quote(engagement, self.hours, record.opportunity_value_usd).proposed_payment_usd

    def claim(
        self,
        engagement: Engagement,
        principal: Principal,
        *,
        claim_id: str,
        now: datetime,
        reminder_days: Sequence[int],
    ) -> Claim:
        """The new claim of this draft in ``engagement``, pending consent from ``now`` (rule 12)."""
        deadline = consent_deadline_for(now, engagement.consent_window_days)
        customer = self.customer
        resolved = customer.checked.value if customer.given.type is IdentifierType.DOMAIN and customer.checked else None
        return Claim(
            claim_id=claim_id,
            partner_id=principal.partner_id,
            location_id=self.location.location_id,
            engagement_id=engagement.engagement_id,
            friendly_name=self.friendly_name,
            identifier=ClaimIdentifier(
                type=customer.given.type, value=customer.given.value, resolved_tenant_id=resolved
            ),
            customer_key=customer.key,
            origin=self.origin,
            state=ClaimState.PENDING_CONSENT,
            customer_contact=self.customer_contact,
            partner_contact=self.partner_contact,
            tenant_mismatch_reason=self.tenant_mismatch_reason,
            hours=self.hours,
            proposed_payment_usd=self.proposed_payment_usd,
            consent_deadline=deadline,
            pending_reminders=reminders_for(now, deadline, list(reminder_days)),
            created_at=now,
            updated_at=now,
            history=[
                HistoryEntry(
                    at=now,
                    actor=principal.actor,
                    request_id=principal.request_id,
                    correlation_id=principal.request_id,
                    from_=None,
                    to=ClaimState.PENDING_CONSENT,
                    reason=self.origin.value,
                )
            ],
        )

    @property
    def engagement_ids(self) -> list[str]:
        return [e.engagement_id for e in self.engagements]


@dataclass
class Nominations:
    """The add-customer use cases over their ports.

    Reads follow docs/data-model.md: what is keyed by the request is read at once (``lookups``: one
    BatchGetItem on DynamoDB; by default the ports one by one), and a domain's tenant first when the
    customer key depends on it (rule 3). Errors keep their order: location, identifier, engagements.
    """

    reference: ReferenceRepository
    claims: ClaimRepository
    clock: Clock
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    retry: RetryPolicy = DEFAULT_RETRY
    reminder_days: tuple[int, ...] = (7, 1)
    sleep: Callable[[float], None] = time.sleep
    lookups: Lookups | None = None
    metrics: BusinessMetrics = NO_METRICS

    # --- reads -----------------------------------------------------------------------------------

    def preview(self, principal: Principal, check: EligibilityCheck) -> Preview:
        """Rule 6: every engagement, split into those the location and customer are eligible for and not."""
        principal.require_any(CLAIM_ROLES, "Checking eligibility")
        parsed = _parsed(check.identifier.type.value, check.identifier.value)
        contact_domain = email_domain(check.customer_email) if check.customer_email else None
        found = self._look_up(
            Lookup(location_id=check.location_id, domains=_domains(parsed, contact_domain), customers=_direct(parsed))
        )
        location = self._own_location(principal, found.location)
        if isinstance(parsed, ValidationFailed):
            raise parsed
        given = parsed
        engagements = self.reference.list_engagements()
        ids = [e.engagement_id for e in engagements]
        customer, snapshots = self._customer(principal, given, found, ids, with_limits_read=False)
        verdicts = self._verdicts(engagements, location, customer, snapshots or {})
        contact_tenant = found.tenants.get(contact_domain) if contact_domain else None
        return Preview(
            eligible=[v.engagement for v in verdicts if v.eligible],
            ineligible=[v for v in verdicts if not v.eligible],
            tenant_mismatch_reason_required=bool(check.customer_email) and _tenant_mismatch(given, contact_tenant),
        )

    def quote(self, principal: Principal, request: PaymentQuoteRequest) -> Quote:
        principal.require_any(CLAIM_ROLES, "Quoting a payment")
        identifier = _parsed(IdentifierType.MSX_OPPORTUNITY_ID.value, request.msx_opportunity_id)
        found = self._look_up(
            Lookup(
                location_id=request.location_id,
                engagement_ids=(request.engagement_id,),
                customers=_direct(identifier),
            )
        )
        self._own_location(principal, found.location)
        engagement = self._engagements([request.engagement_id], found, field="engagement_id")[0]
        if isinstance(identifier, ValidationFailed):
            raise ValidationFailed.single("msx_opportunity_id", identifier.errors[0].message)
        payment_rules_of(engagement)
        record = found.customers.get(identifier.key)
        if record is None:
            raise RuleViolation("customer_not_found", f"No MSX opportunity {identifier.value} is known.")
        return quote(engagement, request.hours, record.opportunity_value_usd)

    # --- add ------------------------------------------------------------------------------------

    def add_customer(self, principal: Principal, command: AddCustomer) -> list[Claim]:
        """Rule 7: one claim per engagement, all or nothing, every engagement re-checked now."""
        principal.require_any(CLAIM_ROLES, "Adding a customer")
        parsed = _parsed(command.identifier.type.value, command.identifier.value)
        contact_domain = email_domain(command.customer_contact.email)
        lookup = Lookup(
            location_id=command.location_id,
            engagement_ids=tuple(command.engagement_ids),
            domains=_domains(parsed, contact_domain),
        )
        if isinstance(parsed, Identifier) and parsed.type is not IdentifierType.DOMAIN:
            lookup = lookup.with_customer(principal.partner_id, parsed, command.engagement_ids)
        found = self._look_up(lookup)
        location = self._own_location(principal, found.location)
        if isinstance(parsed, ValidationFailed):
            raise parsed
        given = parsed
        engagements = self._engagements(command.engagement_ids, found, field="engagement_ids")
        hours = _hours_for(engagements, command.hours)
        contact_tenant = found.tenants.get(contact_domain) if contact_domain else None
        if _tenant_mismatch(given, contact_tenant) and not command.tenant_mismatch_reason:
            raise RuleViolation(
                "tenant_mismatch_reason_required",
                "The tenant id does not match the tenant of the customer contact's email domain; "
                "give tenant_mismatch_reason.",
                field="tenant_mismatch_reason",
            )
        customer, snapshots = self._customer(principal, given, found, command.engagement_ids, with_limits_read=True)
        draft = ClaimDraft(
            location=location,
            customer=customer,
            engagements=tuple(engagements),
            friendly_name=command.friendly_name,
            customer_contact=command.customer_contact,
            partner_contact=command.partner_contact,
            origin=Origin.ADDED,
            hours=hours,
            tenant_mismatch_reason=command.tenant_mismatch_reason,
        )
        return self._create(principal, draft, snapshots)

    def claim_customer(self, principal: Principal, customer_id: str, command: ClaimCustomer) -> list[Claim]:
        """Rule 9: a known customer of the caller's partner only; another partner's is not found."""
        principal.require_any(CLAIM_ROLES, "Claiming a customer")
        identifier = parse_customer_key(customer_id) if len(customer_id) <= 300 else None
        if identifier is None:
            raise NotFound("Known customer")
        # The path names the customer key, so everything is keyed by the request: one consistent read.
        found = self._look_up(
            Lookup(
                location_id=command.location_id,
                engagement_ids=tuple(command.engagement_ids),
                known_customer=(principal.partner_id, customer_id),
            ).with_customer(principal.partner_id, identifier, command.engagement_ids)
        )
        known = found.known_customer
        if known is None:
            raise NotFound("Known customer")
        location = self._own_location(principal, found.location)
        engagements = self._engagements(command.engagement_ids, found, field="engagement_ids")
        hours = _hours_for(engagements, command.hours)
        given = accepted_identifier(identifier, known.identifiers, engagements)
        draft = ClaimDraft(
            location=location,
            customer=Customer(given=given, checked=identifier, record=found.customers.get(identifier.key)),
            engagements=tuple(engagements),
            friendly_name=command.friendly_name,
            customer_contact=command.customer_contact or CustomerContact.model_validate(known.customer_contact),
            partner_contact=command.partner_contact or PartnerContact.model_validate(known.partner_contact),
            origin=Origin.CLAIMED,
            hours=hours,
        )
        return self._create(principal, draft, found.limits.get(identifier.key))

    def _create(
        self, principal: Principal, draft: ClaimDraft, snapshots: dict[str, LimitSnapshot] | None
    ) -> list[Claim]:
        """Check limits and write, re-reading on every concurrent change (rule 11).

        ``snapshots``: the limits as the request's first (consistent) read found them, if it read them.
        """
        first_read = snapshots

        def write() -> NewClaims:
            nonlocal first_read
            limits, first_read = first_read, None  # the request's read serves the first try only
            if limits is None:
                limits = self.claims.read_limits(principal.partner_id, draft.customer.key, draft.engagement_ids)
            verdicts = self._verdicts(draft.engagements, draft.location, draft.customer, limits)
            refused = [r.code.value for v in verdicts if not v.eligible for r in v.reasons]
            if refused:  # a refusal is never retried: counted once per request that reaches it
                self.metrics.count(refusal_counts(refused))
            _refuse_ineligible(verdicts)
            now = self.clock.now()
            claims = [
                draft.claim(e, principal, claim_id=self.new_id(), now=now, reminder_days=self.reminder_days)
                for e in draft.engagements
            ]
            new = NewClaims(claims=claims, snapshots=limits, expire=self._expiries(limits, now, principal.request_id))
            self.claims.create(new)
            return new

        try:
            written = retry_on_conflict(write, self.retry, self.sleep)
        except ConcurrentChange as error:
            raise DependencyUnavailable("Too many simultaneous changes to this customer; retry shortly.") from error
        # Committed: counted once, after the write that succeeded (docs/operations.md#business-metrics)
        self.metrics.count(creation_counts(written, (e.payment_type for e in draft.engagements)))
        return list(written.claims)

    def _expiries(self, snapshots: dict[str, LimitSnapshot], now: datetime, correlation_id: str | None) -> list[Claim]:
        """Overdue claims still counted: expired in the same transaction that replaces them (rule 17), the entry
        keeping the adding request's correlation id."""
        overdue_ids = sorted({h.claim_id for s in snapshots.values() for h in s.overdue(now)})
        if not overdue_ids:
            return []
        stored = self.claims.get_claims(overdue_ids)
        expired = []
        for claim in stored.values():
            deadline = claim.deadline
            if deadline is not None and claim.effective_state(now) is ClaimState.EXPIRED:
                expired.append(claim.expired_at_deadline(correlation_id))
        if len(expired) != len(overdue_ids):
            raise ConcurrentChange("a counted claim changed since the counter was read")
        return expired

    # --- shared checks ---------------------------------------------------------------------------

    def _look_up(self, lookup: Lookup) -> Found:
        reads = self.lookups or SeparateLookups(
            self.reference, read_limits=self.claims.read_limits, get_known_customer=self.claims.get_known_customer
        )
        return reads.look_up(lookup)

    @staticmethod
    def _own_location(principal: Principal, location: Location | None) -> Location:
        """The caller's location; an unknown one and another partner's get the same answer."""
        if location is None or location.partner_id != principal.partner_id:
            raise ValidationFailed.single("location_id", "is not a location of your organisation", "unknown")
        return location

    @staticmethod
    def _engagements(engagement_ids: Sequence[str], found: Found, field: str) -> list[Engagement]:
        if len(set(engagement_ids)) != len(engagement_ids):
            raise ValidationFailed.single(field, "lists an engagement more than once", "duplicate")
        missing = [
            FieldError(f"{field}[{i}]" if field == "engagement_ids" else field, "unknown engagement", "unknown")
            for i, engagement_id in enumerate(engagement_ids)
            if engagement_id not in found.engagements
        ]
        if missing:
            raise ValidationFailed(missing)
        return [found.engagements[engagement_id] for engagement_id in engagement_ids]

    def _customer(
        self,
        principal: Principal,
        given: Identifier,
        found: Found,
        engagement_ids: Sequence[str],
        *,
        with_limits_read: bool,
    ) -> tuple[Customer, dict[str, LimitSnapshot] | None]:
        """The customer as checked (rule 3) and its limits in ``engagement_ids``, if read.

        An identifier other than a domain was read with the request (``found``), its limits too when
        ``with_limits_read``. A domain's record and limits are keyed by its tenant, read in ``found``:
        one more consistent read, of both. An unknown domain has no record, and no limits to read.
        """
        checked = checked_identifier(given, found.tenants.get)
        if checked is None:
            return Customer(given=given, checked=None, record=None), None
        if given.type is not IdentifierType.DOMAIN and with_limits_read:
            return Customer(given, checked, found.customers.get(checked.key)), found.limits.get(checked.key)
        lookup = Lookup(limits=(LimitKeys(principal.partner_id, checked.key, tuple(engagement_ids)),))
        if given.type is IdentifierType.DOMAIN:
            lookup = Lookup().with_customer(principal.partner_id, checked, engagement_ids)
        more = self._look_up(lookup)
        record = (more if given.type is IdentifierType.DOMAIN else found).customers.get(checked.key)
        return Customer(given, checked, record), more.limits.get(checked.key)

    def _verdicts(
        self,
        engagements: Sequence[Engagement],
        location: Location,
        customer: Customer,
        snapshots: dict[str, LimitSnapshot],
    ) -> list[EngagementVerdict]:
        now = self.clock.now()
        return [
            EngagementVerdict(
                engagement,
                evaluate(
                    engagement,
                    location=location,
                    identifier=customer.given,
                    checked=customer.checked,
                    customer=customer.record,
                    limit=snapshots.get(
                        engagement.engagement_id, LimitSnapshot(engagement.engagement_id, customer.key)
                    ).state_at(now),
                    today=now.date(),
                ),
            )
            for engagement in engagements
        ]


def _parsed(type_: str, value: str) -> Identifier | ValidationFailed:
    """The identifier, or why it is refused: raised once the location is checked, as always."""
    try:
        return parse_identifier(type_, value)
    except ValidationFailed as refused:
        return refused


def _domains(parsed: Identifier | ValidationFailed, contact_domain: str | None) -> tuple[str, ...]:
    """Rules 3 and 4: the customer's domain and the contact's email domain, resolved in one read."""
    domain = parsed.value if isinstance(parsed, Identifier) and parsed.type is IdentifierType.DOMAIN else None
    return tuple(dict.fromkeys(d for d in (domain, contact_domain) if d))


def _direct(parsed: Identifier | ValidationFailed) -> tuple[Identifier, ...]:
    """An identifier checked as given (rule 3): its record and limits can be read with the request."""
    return (parsed,) if isinstance(parsed, Identifier) and parsed.type is not IdentifierType.DOMAIN else ()


def _tenant_mismatch(given: Identifier, contact_tenant: str | None) -> bool:
    """Rule 4: a tenant id that differs from the contact's email tenant, or whose email tenant is unknown."""
    return given.type is IdentifierType.TENANT_ID and contact_tenant != given.value


def _hours_for(engagements: list[Engagement], hours: int | None) -> int | None:
    """Rule 8: variable payment takes exactly one engagement and whole hours within its range."""
    variable = [e for e in engagements if e.payment_type is PaymentType.VARIABLE]
    if not variable:
        if hours is not None:
            raise ValidationFailed.single("hours", "applies to variable-payment engagements only", "not_allowed")
        return None
    if len(engagements) != 1:
        raise ValidationFailed.single(
            "engagement_ids",
            "a variable-payment engagement must be requested alone",
            "variable_payment_alone",
        )
    return check_hours(payment_rules_of(variable[0]), hours)


def _refuse_ineligible(verdicts: list[EngagementVerdict]) -> None:
    """409 when only limits or uniqueness stand in the way (rules 10-11), otherwise 422 with every reason."""
    refused = [v for v in verdicts if not v.eligible]
    if not refused:
        return
    reasons = [r for v in refused for r in v.reasons]
    details = [
        {"engagement_id": v.engagement.engagement_id, "reasons": [r.as_dict() for r in v.reasons]} for v in refused
    ]
    if all(r.code in LIMIT_CODES for r in reasons):
        duplicate = next((r for r in reasons if r.code is ReasonCode.DUPLICATE_CLAIM), None)
        first = duplicate or reasons[0]
        extra = {"existing_claim_id": duplicate.claim_id} if duplicate else {}
        raise Conflict(first.code.value, first.message, engagements=details, **extra)
    first = next(r for r in reasons if r.code not in LIMIT_CODES)
    raise RuleViolation(first.code.value, first.message, engagements=details)
