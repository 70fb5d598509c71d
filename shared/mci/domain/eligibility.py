"""Rules 1-6: whether a location may nominate a customer for an engagement, and why not."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from mci.domain.identifiers import Identifier, IdentifierType, parse_customer_key
from mci.domain.reference import CustomerRecord, Engagement, Location


class ReasonCode(StrEnum):
    LOCATION_NOT_ENROLLED = "location_not_enrolled"
    LOCATION_NOT_ELIGIBLE = "location_not_eligible"
    ENGAGEMENT_CLOSED = "engagement_closed"
    IDENTIFIER_TYPE_NOT_ACCEPTED = "identifier_type_not_accepted"
    CUSTOMER_NOT_FOUND = "customer_not_found"
    CRITERIA_NOT_MET = "criteria_not_met"
    ACTIVE_CLAIM_LIMIT_REACHED = "active_claim_limit_reached"
    DUPLICATE_CLAIM = "duplicate_claim"


@dataclass(frozen=True, slots=True)
class Reason:
    code: ReasonCode
    message: str
    claim_id: str | None = None

    def as_dict(self) -> dict[str, str]:
        data = {"code": self.code.value, "message": self.message}
        if self.claim_id:
            data["claim_id"] = self.claim_id
        return data


@dataclass(frozen=True, slots=True)
class LimitState:
    """Active claims on one customer key in one engagement, as of now (overdue claims excluded)."""

    active_claims: int = 0
    partner_claim_id: str | None = None


def checked_identifier(identifier: Identifier, tenant_of_domain: Callable[[str], str | None]) -> Identifier | None:
    """Rule 3: a domain is checked as its tenant; any other identifier as given. None: unknown domain."""
    if identifier.type is not IdentifierType.DOMAIN:
        return identifier
    tenant = tenant_of_domain(identifier.value)
    return Identifier(IdentifierType.TENANT_ID, tenant) if tenant else None


def location_reasons(engagement: Engagement, location: Location, today: date) -> list[Reason]:
    """The reasons that depend on the location and the engagement only."""
    reasons: list[Reason] = []
    if not location.enrolled_in_mci:
        reasons.append(
            Reason(
                ReasonCode.LOCATION_NOT_ENROLLED,
                f"Location {location.location_id} is not enrolled in MCI.",
            )
        )
    if engagement.engagement_id not in location.eligible_engagements:
        reasons.append(
            Reason(
                ReasonCode.LOCATION_NOT_ELIGIBLE,
                f"Location {location.location_id} is not eligible for engagement {engagement.name}.",
            )
        )
    if not engagement.is_open(today):
        reasons.append(
            Reason(
                ReasonCode.ENGAGEMENT_CLOSED,
                f"Engagement {engagement.name} is open from {engagement.opens_on.isoformat()} "
                f"to {engagement.closes_on.isoformat()}, not on {today.isoformat()}.",
            )
        )
    return reasons


def criteria_reasons(engagement: Engagement, customer: CustomerRecord) -> list[Reason]:
    """One reason per failed criterion, naming it."""
    criteria = engagement.criteria
    reasons: list[Reason] = []
    if criteria.segments is not None and customer.segment not in criteria.segments:
        reasons.append(
            Reason(
                ReasonCode.CRITERIA_NOT_MET,
                f"Criterion 'segments': the customer's segment {customer.segment} is not one of "
                f"{', '.join(criteria.segments)}.",
            )
        )
    if criteria.countries is not None and customer.country not in criteria.countries:
        reasons.append(
            Reason(
                ReasonCode.CRITERIA_NOT_MET,
                f"Criterion 'countries': the customer's country {customer.country} is not one of "
                f"{', '.join(criteria.countries)}.",
            )
        )
    minimum = criteria.min_opportunity_value_usd
    if minimum is not None and (customer.opportunity_value_usd or 0) < minimum:
        reasons.append(
            Reason(
                ReasonCode.CRITERIA_NOT_MET,
                f"Criterion 'min_opportunity_value_usd': the opportunity's estimated value is below {minimum} USD.",
            )
        )
    return reasons


def limit_reasons(engagement: Engagement, limit: LimitState) -> list[Reason]:
    reasons: list[Reason] = []
    if limit.active_claims >= engagement.max_active_claims_per_customer:
        reasons.append(
            Reason(
                ReasonCode.ACTIVE_CLAIM_LIMIT_REACHED,
                f"This customer already has {limit.active_claims} active claim(s) in engagement "
                f"{engagement.name}; the limit is {engagement.max_active_claims_per_customer}.",
            )
        )
    if limit.partner_claim_id is not None:
        reasons.append(
            Reason(
                ReasonCode.DUPLICATE_CLAIM,
                f"Your organisation already has active claim {limit.partner_claim_id} for this customer "
                f"in engagement {engagement.name}.",
                claim_id=limit.partner_claim_id,
            )
        )
    return reasons


def accepted_identifier(checked: Identifier, known_as: Sequence[str], engagements: Sequence[Engagement]) -> Identifier:
    """The identifier a known customer is claimed with: the checked one, else another it was checked with
    (``known_as``, identifier keys) that every engagement accepts, such as the domain of a tenant for a
    domain-only engagement. The checked identifier stays the customer key (rule 3)."""
    for candidate in (checked, *filter(None, (parse_customer_key(k) for k in known_as))):
        if all(candidate.type in e.identifier_types for e in engagements):
            return candidate
    return checked


def evaluate(
    engagement: Engagement,
    *,
    location: Location,
    identifier: Identifier,
    checked: Identifier | None,
    customer: CustomerRecord | None,
    limit: LimitState,
    today: date,
) -> list[Reason]:
    """Every reason (rule 5) why ``location`` may not nominate ``identifier``; empty when eligible.

    ``checked`` is the identifier the checks run on (rule 3) and ``customer`` its record, if any.
    """
    reasons = location_reasons(engagement, location, today)
    if identifier.type not in engagement.identifier_types:
        accepted = ", ".join(t.value for t in engagement.identifier_types)
        reasons.append(
            Reason(
                ReasonCode.IDENTIFIER_TYPE_NOT_ACCEPTED,
                f"Engagement {engagement.name} accepts {accepted}, not {identifier.type.value}.",
            )
        )
        return reasons
    if checked is None or customer is None:
        what = (
            f"domain {identifier.value} has no known tenant"
            if checked is None
            else f"no customer record exists for {checked.type.value} {checked.value}"
        )
        reasons.append(Reason(ReasonCode.CUSTOMER_NOT_FOUND, f"Customer not found: {what}."))
        return reasons
    reasons.extend(criteria_reasons(engagement, customer))
    reasons.extend(limit_reasons(engagement, limit))
    return reasons
