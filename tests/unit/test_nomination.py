"""Rules 1, 7, 10, 11 and 17: the add-customer, preview and quote use cases on the in-memory fakes."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from mci.adapters.memory import MemoryClaimRepository, MemoryReferenceRepository
from mci.domain.claims import Claim, ClaimState, Origin
from mci.domain.clock import FixedClock
from mci.domain.commands import AddCustomer, EligibilityCheck, PaymentQuoteRequest
from mci.domain.errors import (
    Conflict,
    DependencyUnavailable,
    DomainError,
    Forbidden,
    RuleViolation,
    ValidationFailed,
)
from mci.domain.nomination import Nominations
from mci.domain.ports import ClaimChange, ConcurrentChange, LimitSnapshot, NewClaims
from mci.domain.principal import Principal
from mci.domain.reference import ReferenceData
from mci.domain.retry import RetryPolicy
from tests.support.reference import (
    ADATUM,
    ADATUM_LISBON,
    AI,
    CONTOSO,
    CONTOSO_MADRID,
    CONTOSO_SEATTLE,
    FABRIKAM_TENANT,
    LEGACY,
    MIGRATE,
    NORTHWIND,
    NORTHWIND_DUBLIN,
    NOW,
    SECURITY,
    add_customer_body,
    demo_data,
)

SHORT = "e-short-window"  # fixed, consent window 14 days, limit 3
LOCATIONS = {CONTOSO: CONTOSO_MADRID, NORTHWIND: NORTHWIND_DUBLIN, ADATUM: ADATUM_LISBON}
CROWD = [f"p-crowd-{n}" for n in range(8)]  # eight more partners, one location each
for n, partner in enumerate(CROWD):
    LOCATIONS[partner] = f"88000{n:02d}"


def user(partner_id: str = CONTOSO, *roles: str) -> Principal:
    return Principal(partner_id, frozenset(roles or {"incentives_user"}), "user-1")


def reference_data() -> ReferenceData:
    return ReferenceData.model_validate(
        {
            "engagements": [
                {
                    "engagement_id": SHORT,
                    "name": "Short window",
                    "payment_type": "fixed",
                    "identifier_types": ["domain", "tenant_id"],
                    "consent_window_days": 14,
                    "max_active_claims_per_customer": 3,
                    "opens_on": "2026-01-01",
                    "closes_on": "2027-01-01",
                }
            ],
            "locations": [
                {
                    "location_id": LOCATIONS[partner],
                    "partner_id": partner,
                    "name": f"Crowd {partner}",
                    "enrolled_in_mci": True,
                    "eligible_engagements": [MIGRATE, SECURITY],
                }
                for partner in CROWD
            ]
            + [
                {
                    "location_id": CONTOSO_MADRID,
                    "partner_id": CONTOSO,
                    "name": "Contoso Partners Madrid",
                    "enrolled_in_mci": True,
                    "eligible_engagements": [MIGRATE, SECURITY, AI, LEGACY, SHORT],
                }
            ],
        }
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def claims() -> MemoryClaimRepository:
    return MemoryClaimRepository()


@pytest.fixture
def nominations(claims: MemoryClaimRepository, clock: FixedClock) -> Nominations:
    reference = MemoryReferenceRepository(demo_data())
    reference.save(reference_data())
    ids = (f"claim-{n}" for n in itertools.count(1))
    lock = threading.Lock()

    def new_id() -> str:
        with lock:
            return next(ids)

    return Nominations(reference=reference, claims=claims, clock=clock, new_id=new_id, sleep=lambda _: None)


def command(partner_id: str = CONTOSO, **overrides: Any) -> AddCustomer:
    return AddCustomer.model_validate(add_customer_body(location_id=LOCATIONS[partner_id], **overrides))


def add(nominations: Nominations, partner_id: str = CONTOSO, **overrides: Any) -> list[Claim]:
    return nominations.add_customer(user(partner_id), command(partner_id, **overrides))


def active_claims(claims: MemoryClaimRepository, engagement_id: str) -> list[Claim]:
    return [c for c in claims.claims.values() if c.engagement_id == engagement_id and not c.state.is_terminal]


# --- rule 7: add customer ---------------------------------------------------------------------------


def test_adds_one_claim_per_engagement(nominations: Nominations, claims: MemoryClaimRepository) -> None:
    created = add(nominations, engagement_ids=[MIGRATE, SECURITY, SHORT])
    assert [c.engagement_id for c in created] == [MIGRATE, SECURITY, SHORT]
    assert claims.claims == {c.claim_id: c for c in created}
    for claim in created:
        assert claim.partner_id == CONTOSO
        assert claim.location_id == CONTOSO_MADRID
        assert claim.state is ClaimState.PENDING_CONSENT
        assert claim.origin is Origin.ADDED
        assert claim.created_at == claim.updated_at == NOW
        assert claim.customer_contact.language == "es"
        assert [(h.from_, h.to, h.actor, h.reason) for h in claim.history] == [
            (None, ClaimState.PENDING_CONSENT, "partner:p-contoso-partners/user:user-1", "added")
        ]
        assert claims.active_count(claim.engagement_id, f"tenant_id:{FABRIKAM_TENANT}") == 1


def test_consent_deadline_follows_each_engagements_window(nominations: Nominations) -> None:
    migrate, short = add(nominations, engagement_ids=[MIGRATE, SHORT])
    assert migrate.consent_deadline == NOW + timedelta(days=30)
    assert short.consent_deadline == NOW + timedelta(days=14)
    assert migrate.submission_deadline is None


def test_contacts_are_normalised(nominations: Nominations) -> None:
    [claim] = add(
        nominations,
        customer_contact={"name": "  Ana  ", "email": "Ana@Bücher.Example", "phone": "+34 600 000 000"},
    )
    assert claim.customer_contact.name == "Ana"
    assert claim.customer_contact.email == "Ana@xn--bcher-kva.example"
    assert claim.customer_contact.language == "en"


TPID = {"identifier": {"type": "tpid", "value": "100200300"}}


@pytest.mark.parametrize(
    ("engagement_ids", "overrides", "code"),
    [
        ([MIGRATE, LEGACY], {}, "engagement_closed"),
        ([LEGACY, MIGRATE], {}, "engagement_closed"),
        ([SECURITY, MIGRATE, LEGACY], {}, "engagement_closed"),
        ([MIGRATE, SECURITY], TPID, "identifier_type_not_accepted"),
        ([SECURITY, MIGRATE], {"identifier": {"type": "domain", "value": "tailspintoys.com"}}, "criteria_not_met"),
        ([MIGRATE, SECURITY], {"identifier": {"type": "domain", "value": "unknown.example"}}, "customer_not_found"),
    ],
)
def test_all_or_nothing_when_one_engagement_is_ineligible(
    nominations: Nominations,
    claims: MemoryClaimRepository,
    engagement_ids: list[str],
    overrides: dict[str, Any],
    code: str,
) -> None:
    with pytest.raises(RuleViolation) as raised:
        add(nominations, engagement_ids=engagement_ids, **overrides)
    assert raised.value.code == code
    assert claims.claims == {}
    assert claims.guards == {}
    assert all(not c.holders for c in claims.counters.values())


def test_one_engagement_at_its_limit_blocks_the_others(nominations: Nominations, claims: MemoryClaimRepository) -> None:
    [northwind] = add(nominations, NORTHWIND, engagement_ids=[SECURITY])
    with pytest.raises(Conflict) as raised:
        add(nominations, engagement_ids=[MIGRATE, SECURITY, SHORT])
    assert raised.value.status == 409
    assert raised.value.code == "active_claim_limit_reached"
    assert "existing_claim_id" not in raised.value.extra
    assert raised.value.extra["engagements"] == [
        {
            "engagement_id": SECURITY,
            "reasons": [
                {
                    "code": "active_claim_limit_reached",
                    "message": "This customer already has 1 active claim(s) in engagement Security workshop; "
                    "the limit is 1.",
                }
            ],
        }
    ]
    assert list(claims.claims) == [northwind.claim_id]


def test_a_rule_violation_wins_over_a_limit(nominations: Nominations) -> None:
    """422 when anything but limits stands in the way; every refused engagement is listed."""
    add(nominations, NORTHWIND, engagement_ids=[SECURITY])
    with pytest.raises(RuleViolation) as raised:
        add(nominations, engagement_ids=[SECURITY, LEGACY])
    assert raised.value.status == 422
    assert raised.value.code == "engagement_closed"
    assert [e["engagement_id"] for e in raised.value.extra["engagements"]] == [SECURITY, LEGACY]


def test_every_engagement_is_rechecked_at_submission(nominations: Nominations) -> None:
    check = EligibilityCheck.model_validate(
        {"location_id": CONTOSO_MADRID, "identifier": {"type": "domain", "value": "fabrikam.com"}}
    )
    assert SECURITY in [e.engagement_id for e in nominations.preview(user(), check).eligible]
    add(nominations, NORTHWIND, engagement_ids=[SECURITY])
    with pytest.raises(Conflict):
        add(nominations, engagement_ids=[SECURITY])


# --- rule 10: one active claim per partner, engagement and identifier ----------------------------------


def test_duplicate_names_the_existing_claim(nominations: Nominations, claims: MemoryClaimRepository) -> None:
    [first] = add(nominations)
    with pytest.raises(Conflict) as raised:
        add(nominations, friendly_name="Again", customer_contact={"name": "Other", "email": "o@fabrikam.com"})
    assert raised.value.status == 409
    assert raised.value.code == "duplicate_claim"
    assert raised.value.extra["existing_claim_id"] == first.claim_id
    assert first.claim_id in raised.value.detail
    assert list(claims.claims) == [first.claim_id]


def test_duplicate_in_one_engagement_blocks_the_whole_request(
    nominations: Nominations, claims: MemoryClaimRepository
) -> None:
    [first] = add(nominations, engagement_ids=[MIGRATE])
    with pytest.raises(Conflict) as raised:
        add(nominations, engagement_ids=[SHORT, MIGRATE])
    assert raised.value.extra["existing_claim_id"] == first.claim_id
    assert list(claims.claims) == [first.claim_id]


def test_another_partner_is_not_a_duplicate(nominations: Nominations) -> None:
    add(nominations, CONTOSO)
    [northwind] = add(nominations, NORTHWIND)
    assert northwind.partner_id == NORTHWIND


def test_a_cancelled_claim_frees_its_place(nominations: Nominations, claims: MemoryClaimRepository) -> None:
    [first] = add(nominations, engagement_ids=[SECURITY])
    cancelled = first.transition(ClaimState.CANCELLED, at=NOW, actor="partner", reason="typo")
    claims.apply(ClaimChange(before=first, after=cancelled))
    [second] = add(nominations, engagement_ids=[SECURITY])
    assert second.claim_id != first.claim_id
    assert claims.active_count(SECURITY, second.customer_key) == 1


# --- rule 17 in limits: an overdue claim stops counting and is expired by the write that replaces it --


def test_an_overdue_claim_no_longer_counts(
    nominations: Nominations, claims: MemoryClaimRepository, clock: FixedClock
) -> None:
    [old] = add(nominations, NORTHWIND, engagement_ids=[SECURITY])
    clock.advance(timedelta(days=30) - timedelta(seconds=1))
    with pytest.raises(Conflict):
        add(nominations, engagement_ids=[SECURITY])
    clock.advance(timedelta(seconds=1))
    [new] = add(nominations, engagement_ids=[SECURITY])
    expired = claims.claims[old.claim_id]
    assert expired.state is ClaimState.EXPIRED
    assert expired.history[-1].at == old.consent_deadline
    assert expired.history[-1].actor == "system"
    assert claims.active_count(SECURITY, new.customer_key) == 1
    assert [c.claim_id for c in active_claims(claims, SECURITY)] == [new.claim_id]


def test_an_own_overdue_claim_is_not_a_duplicate(
    nominations: Nominations, claims: MemoryClaimRepository, clock: FixedClock
) -> None:
    [old] = add(nominations)
    clock.advance(timedelta(days=31))
    [new] = add(nominations)
    assert claims.claims[old.claim_id].state is ClaimState.EXPIRED
    assert new.claim_id != old.claim_id


# --- rule 1: roles and locations --------------------------------------------------------------------


@pytest.mark.parametrize("roles", [("referral_admin",), ("mci_operations",), ("incentives_viewer",)])
def test_adding_needs_a_claim_role(nominations: Nominations, claims: MemoryClaimRepository, roles: tuple[str]) -> None:
    with pytest.raises(Forbidden) as raised:
        nominations.add_customer(user(CONTOSO, *roles), command())
    assert raised.value.status == 403
    assert "incentives_admin or incentives_user" in raised.value.detail
    assert claims.claims == {}


def test_no_roles_at_all_is_forbidden(nominations: Nominations) -> None:
    with pytest.raises(Forbidden):
        nominations.add_customer(Principal(CONTOSO, frozenset()), command())


def test_incentives_admin_may_add(nominations: Nominations) -> None:
    assert nominations.add_customer(user(CONTOSO, "incentives_admin"), command())


def test_another_partners_location_is_answered_like_an_unknown_one(
    nominations: Nominations, claims: MemoryClaimRepository
) -> None:
    def refusal(location_id: str) -> tuple[str, list[Any]]:
        body = add_customer_body(location_id=location_id)
        with pytest.raises(ValidationFailed) as raised:
            nominations.add_customer(user(), AddCustomer.model_validate(body))
        return raised.value.detail, raised.value.extra["errors"]

    theirs = refusal(NORTHWIND_DUBLIN)
    assert theirs == refusal("9999999")
    assert theirs[1] == [
        {"field": "location_id", "message": "is not a location of your organisation", "code": "unknown"}
    ]
    assert claims.claims == {}


def test_a_location_not_enrolled_is_refused(nominations: Nominations) -> None:
    with pytest.raises(RuleViolation) as raised:
        nominations.add_customer(user(), AddCustomer.model_validate(add_customer_body(location_id=CONTOSO_SEATTLE)))
    assert raised.value.code == "location_not_enrolled"


@pytest.mark.parametrize(
    ("engagement_ids", "fields"),
    [
        ([MIGRATE, "e-unknown"], ["engagement_ids[1]"]),
        (["e-unknown", MIGRATE, "e-other"], ["engagement_ids[0]", "engagement_ids[2]"]),
    ],
)
def test_unknown_engagements_are_named_by_position(
    nominations: Nominations, engagement_ids: list[str], fields: list[str]
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        add(nominations, engagement_ids=engagement_ids)
    assert [e.field for e in raised.value.errors] == fields
    assert {e.code for e in raised.value.errors} == {"unknown"}


def test_an_engagement_listed_twice_is_refused(nominations: Nominations, claims: MemoryClaimRepository) -> None:
    with pytest.raises(ValidationFailed) as raised:
        add(nominations, engagement_ids=[MIGRATE, MIGRATE])
    assert [(e.field, e.code) for e in raised.value.errors] == [("engagement_ids", "duplicate")]
    assert claims.claims == {}


def test_an_invalid_identifier_is_refused_naming_its_value(nominations: Nominations) -> None:
    with pytest.raises(ValidationFailed) as raised:
        add(nominations, identifier={"type": "tenant_id", "value": "not-a-guid"})
    assert [e.field for e in raised.value.errors] == ["identifier.value"]


def test_a_wrong_identifier_type_for_a_variable_engagement_says_so(nominations: Nominations) -> None:
    with pytest.raises(RuleViolation) as raised:
        add(nominations, engagement_ids=[AI], hours=20)
    assert raised.value.code == "identifier_type_not_accepted"


# --- rule 11: limits hold under concurrency ---------------------------------------------------------


class RacingClaims(MemoryClaimRepository):
    """Holds every caller after its first read until all have read: they all decide on the same snapshot."""

    def __init__(self, callers: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(callers, timeout=10)
        self.first_read = threading.local()

    def read_limits(
        self, partner_id: str, customer_key: str, engagement_ids: Sequence[str]
    ) -> dict[str, LimitSnapshot]:
        snapshots = super().read_limits(partner_id, customer_key, engagement_ids)
        if not getattr(self.first_read, "done", False):
            self.first_read.done = True
            self.barrier.wait()
        return snapshots


def racing_nominations(callers: int) -> tuple[Nominations, RacingClaims]:
    claims = RacingClaims(callers)
    reference = MemoryReferenceRepository(demo_data())
    reference.save(reference_data())
    return Nominations(reference=reference, claims=claims, clock=FixedClock(NOW), sleep=lambda _: None), claims


def run_together(count: int, work: Any) -> list[Any]:
    results: list[Any] = [None] * count

    def one(index: int) -> None:
        try:
            results[index] = work(index)
        except DomainError as error:
            results[index] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize(("engagement_id", "limit"), [(SECURITY, 1), (MIGRATE, 2)])
def test_simultaneous_partners_get_exactly_the_limit(engagement_id: str, limit: int) -> None:
    nominations, claims = racing_nominations(len(CROWD))
    results = run_together(len(CROWD), lambda i: add(nominations, CROWD[i], engagement_ids=[engagement_id]))
    created = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(created) == limit
    assert {r.code for r in refused} == {"active_claim_limit_reached"}
    assert len(active_claims(claims, engagement_id)) == limit
    assert claims.active_count(engagement_id, f"tenant_id:{FABRIKAM_TENANT}") == limit


def test_simultaneous_requests_of_one_partner_make_one_claim() -> None:
    nominations, claims = racing_nominations(6)
    results = run_together(6, lambda _: add(nominations, CONTOSO, engagement_ids=[MIGRATE]))
    created = [r for r in results if isinstance(r, list)]
    assert len(created) == 1
    assert {r.code for r in results if isinstance(r, DomainError)} == {"duplicate_claim"}
    assert len(active_claims(claims, MIGRATE)) == 1


class FlakyClaims(MemoryClaimRepository):
    """Reports a concurrent change on the first ``failures`` writes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def create(self, new: NewClaims) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConcurrentChange("simulated")
        super().create(new)


def flaky_nominations(failures: int, attempts: int, pauses: list[float]) -> tuple[Nominations, FlakyClaims]:
    claims = FlakyClaims(failures)
    reference = MemoryReferenceRepository(demo_data())
    return (
        Nominations(
            reference=reference,
            claims=claims,
            clock=FixedClock(NOW),
            retry=RetryPolicy(attempts=attempts),
            sleep=pauses.append,
        ),
        claims,
    )


def test_a_concurrent_change_is_retried() -> None:
    pauses: list[float] = []
    nominations, claims = flaky_nominations(failures=2, attempts=3, pauses=pauses)
    [claim] = nominations.add_customer(user(), command())
    assert len(pauses) == 2
    assert list(claims.claims) == [claim.claim_id]


def test_endless_contention_is_a_retryable_503() -> None:
    pauses: list[float] = []
    nominations, claims = flaky_nominations(failures=99, attempts=3, pauses=pauses)
    with pytest.raises(DependencyUnavailable) as raised:
        nominations.add_customer(user(), command())
    assert raised.value.status == 503
    assert raised.value.retry_after_seconds >= 1
    assert len(pauses) == 3
    assert claims.claims == {}


# --- preview and quote: the same gates ----------------------------------------------------------------


def check(location_id: str = CONTOSO_MADRID) -> EligibilityCheck:
    return EligibilityCheck.model_validate(
        {"location_id": location_id, "identifier": {"type": "domain", "value": "fabrikam.com"}}
    )


def test_preview_needs_a_claim_role(nominations: Nominations) -> None:
    with pytest.raises(Forbidden):
        nominations.preview(user(CONTOSO, "referral_admin"), check())


def test_preview_of_another_partners_location_is_refused(nominations: Nominations) -> None:
    with pytest.raises(ValidationFailed) as raised:
        nominations.preview(user(), check(NORTHWIND_DUBLIN))
    assert [e.field for e in raised.value.errors] == ["location_id"]


def quote_request(**overrides: Any) -> PaymentQuoteRequest:
    body = {"engagement_id": AI, "location_id": CONTOSO_MADRID, "msx_opportunity_id": "7-ABC123XYZ", "hours": 10}
    return PaymentQuoteRequest.model_validate({**body, **overrides})


def test_quote_needs_a_claim_role(nominations: Nominations) -> None:
    with pytest.raises(Forbidden):
        nominations.quote(user(CONTOSO, "mci_operations"), quote_request())


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"location_id": NORTHWIND_DUBLIN}, "location_id"),
        ({"location_id": "9999999"}, "location_id"),
        ({"engagement_id": "e-unknown"}, "engagement_id"),
    ],
)
def test_quote_names_the_field_it_refuses(nominations: Nominations, overrides: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        nominations.quote(user(), quote_request(**overrides))
    assert [e.field for e in raised.value.errors] == [field]


def test_quote_names_an_invalid_opportunity_id(nominations: Nominations) -> None:
    with pytest.raises(ValidationFailed) as raised:
        nominations.quote(user(), quote_request(msx_opportunity_id="7-bad"))
    assert [e.field for e in raised.value.errors] == ["msx_opportunity_id"]


def test_quote_of_an_unknown_opportunity(nominations: Nominations) -> None:
    with pytest.raises(RuleViolation) as raised:
        nominations.quote(user(), quote_request(msx_opportunity_id="7-UNKNOWN01"))
    assert raised.value.code == "customer_not_found"


def test_quote_of_a_fixed_engagement(nominations: Nominations) -> None:
    with pytest.raises(RuleViolation) as raised:
        nominations.quote(user(), quote_request(engagement_id=MIGRATE))
    assert raised.value.code == "not_variable_payment"
