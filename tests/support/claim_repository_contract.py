"""The ClaimRepository contract, written once and run on the memory fake, moto and DynamoDB Local.

A test module subclasses ``ClaimRepositoryContract`` (or ``DynamoDBClaimRepositoryContract``) and
overrides the ``backend`` fixture; every test below then runs on that backend. The contract checks
what is stored (through a store view), not only what the repository reads back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import pytest
from botocore.exceptions import ClientError

from mci.adapters import dynamodb_items as items
from mci.domain.claims import Claim, ClaimState, HistoryEntry
from mci.domain.clock import isoformat
from mci.domain.identifiers import Identifier, IdentifierType
from mci.domain.ports import (
    ClaimChange,
    ClaimChanges,
    ClaimRepository,
    ConcurrentChange,
    Holder,
    KnownCustomer,
    LimitKeys,
    LimitSnapshot,
    Lookup,
    Lookups,
    NewClaims,
    PartnerClaims,
    ReferenceRepository,
)
from mci.domain.referrals import Referral, ReferralCustomer, ReferralStatus, ReferralType
from tests.support.claims import (
    CONSENT_WINDOW,
    KEY,
    DynamoDBStoreView,
    StoreView,
    assert_counter_matches_claims,
    expired,
    new_claim,
)
from tests.support.reference import (
    ADATUM,
    CONTOSO,
    CONTOSO_MADRID,
    FABRIKAM_TENANT,
    MIGRATE,
    NORTHWIND,
    NOW,
    SECURITY,
    TAILSPIN_TENANT,
    demo_data,
)

E1, E2, E3 = "e-contract-one", "e-contract-two", "e-contract-three"
P1, P2, P3 = CONTOSO, NORTHWIND, ADATUM
LATER = NOW + CONSENT_WINDOW + timedelta(days=1)  # every claim made at NOW is overdue
ACTOR = f"partner:{P1}/user:u"
MANY_PARTNERS = (P1, P2, P3, "p-litware-partners", "p-proseware-partners")
OTHER_KEY = f"tenant_id:{TAILSPIN_TENANT}"


class Store(ClaimRepository, ClaimChanges, PartnerClaims, Protocol):
    """One adapter serves these ports: creation (with limits), every later change of a claim, and the
    partner's claims by engagement (the Customers page and the Attention required list)."""


@dataclass
class Backend:
    repository: Store
    view: StoreView
    # The reads of keys known together (one BatchGetItem on DynamoDB), over the same store and its reference data.
    reference: ReferenceRepository | None = None
    lookups: Lookups | None = None


def add(backend: Backend, partner_id: str, engagement_ids: Sequence[str], *, at: datetime = NOW) -> list[Claim]:
    """One add as Nominations does it: read the limits, expire what is overdue, write all at once."""
    snapshots = backend.repository.read_limits(partner_id, KEY, engagement_ids)
    claims = [new_claim(partner_id, engagement_id, at=at) for engagement_id in engagement_ids]
    backend.repository.create(
        NewClaims(claims=claims, snapshots=snapshots, expire=overdue_expiries(backend, snapshots, at))
    )
    return claims


def add_retrying(
    backend: Backend, partner_id: str, engagement_ids: Sequence[str], *, at: datetime = NOW, attempts: int = 3
) -> list[Claim]:
    """``add`` re-read and retried on ConcurrentChange, as Nominations retries."""
    for _ in range(attempts - 1):
        try:
            return add(backend, partner_id, engagement_ids, at=at)
        except ConcurrentChange:
            continue
    return add(backend, partner_id, engagement_ids, at=at)


def overdue_expiries(backend: Backend, snapshots: dict[str, LimitSnapshot], at: datetime) -> list[Claim]:
    overdue = sorted({h.claim_id for s in snapshots.values() for h in s.overdue(at)})
    return [expired(c) for c in backend.repository.get_claims(overdue).values()] if overdue else []


def snapshot_without_guard(snapshot: LimitSnapshot) -> LimitSnapshot:
    """The counter as it is, but the caller's guard as if it were absent: only the guard check can fail."""
    return dataclasses.replace(snapshot, partner_claim_id=None)


class ClaimRepositoryContract:
    """Override ``backend`` in a subclass; the tests run unchanged on every store."""

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError("a backend's test module overrides this fixture")

    # --- create ---------------------------------------------------------------------------------

    def test_create_writes_every_claim_counter_and_guard_of_a_request(self, backend: Backend) -> None:
        claims = add(backend, P1, [E1, E2, E3])

        assert backend.repository.get_claims([c.claim_id for c in claims]) == {c.claim_id: c for c in claims}
        for claim in claims:
            assert backend.repository.get_claim(claim.claim_id) == claim
            counter = backend.view.counter(claim.engagement_id, KEY)
            assert counter is not None
            assert (counter.active_count, counter.version, counter.holders) == (1, 1, {claim.claim_id})
            assert backend.view.guard(claim.engagement_id, KEY, P1) == claim.claim_id
            assert_counter_matches_claims(backend.view, claim.engagement_id)

    def test_one_failing_guard_writes_nothing_of_the_other_engagements(self, backend: Backend) -> None:
        (existing,) = add(backend, P1, [E2])
        snapshots = backend.repository.read_limits(P1, KEY, [E1, E2, E3])
        assert snapshots[E2].partner_claim_id == existing.claim_id
        snapshots[E2] = snapshot_without_guard(snapshots[E2])  # E2's counter matches; its guard does not
        claims = [new_claim(P1, e) for e in (E1, E2, E3)]

        with pytest.raises(ConcurrentChange) as raised:
            backend.repository.create(NewClaims(claims=claims, snapshots=snapshots))

        self.check_cancellation(raised.value, failed={4})  # E2's guard: counter, guard, claim per engagement
        assert backend.repository.get_claims([c.claim_id for c in claims]) == {}
        for engagement_id in (E1, E3):
            assert backend.view.counter(engagement_id, KEY) is None
            assert backend.view.guard(engagement_id, KEY, P1) is None
            assert backend.view.claims_of(engagement_id, KEY) == []
        counter = backend.view.counter(E2, KEY)
        assert counter is not None
        assert (counter.active_count, counter.version, counter.holders) == (1, 1, {existing.claim_id})
        assert backend.view.guard(E2, KEY, P1) == existing.claim_id
        assert backend.view.claims_of(E2, KEY) == [existing]

    def test_one_moved_counter_writes_nothing_of_the_other_engagements(self, backend: Backend) -> None:
        snapshots = backend.repository.read_limits(P1, KEY, [E1, E2])
        (theirs,) = add(backend, P2, [E2])  # lands between P1's read and P1's write
        claims = [new_claim(P1, e) for e in (E1, E2)]

        with pytest.raises(ConcurrentChange):
            backend.repository.create(NewClaims(claims=claims, snapshots=snapshots))

        assert backend.repository.get_claims([c.claim_id for c in claims]) == {}
        assert backend.view.counter(E1, KEY) is None
        assert backend.view.guard(E1, KEY, P1) is None
        assert backend.view.guard(E2, KEY, P1) is None
        assert backend.view.claims_of(E2, KEY) == [theirs]
        assert_counter_matches_claims(backend.view, E2)

    def test_a_moved_expiring_claim_writes_nothing(self, backend: Backend) -> None:
        (overdue,) = add(backend, P2, [E1])
        snapshots = backend.repository.read_limits(P1, KEY, [E1, E2])
        stale_expiry = expired(overdue).model_copy(update={"version": overdue.version + 2})
        claims = [new_claim(P1, e, at=LATER) for e in (E1, E2)]

        with pytest.raises(ConcurrentChange):
            backend.repository.create(NewClaims(claims=claims, snapshots=snapshots, expire=[stale_expiry]))

        assert backend.repository.get_claims([c.claim_id for c in claims]) == {}
        assert backend.repository.get_claim(overdue.claim_id) == overdue
        assert backend.view.guard(E1, KEY, P2) == overdue.claim_id
        assert backend.view.counter(E2, KEY) is None
        assert_counter_matches_claims(backend.view, E1)

    @pytest.mark.parametrize("second_partner", [P1, P2], ids=["same-partner", "another-partner"])
    def test_a_second_create_with_a_stale_snapshot_is_a_concurrent_change(
        self, backend: Backend, second_partner: str
    ) -> None:
        stale = backend.repository.read_limits(P1, KEY, [E1])  # what both partners saw: nothing yet
        first = new_claim(P1, E1)
        backend.repository.create(NewClaims(claims=[first], snapshots=stale))
        second = new_claim(second_partner, E1)

        with pytest.raises(ConcurrentChange):
            backend.repository.create(NewClaims(claims=[second], snapshots=stale))

        assert backend.repository.get_claim(second.claim_id) is None
        assert backend.view.claims_of(E1, KEY) == [first]
        assert backend.view.guard(E1, KEY, P1) == first.claim_id
        assert backend.view.guard(E1, KEY, P2) is None
        assert_counter_matches_claims(backend.view, E1)

    def test_a_reused_claim_id_is_a_concurrent_change(self, backend: Backend) -> None:
        (first,) = add(backend, P1, [E1])
        snapshots = backend.repository.read_limits(P2, KEY, [E2])
        clash = new_claim(P2, E2, claim_id=first.claim_id)

        with pytest.raises(ConcurrentChange):
            backend.repository.create(NewClaims(claims=[clash], snapshots=snapshots))

        assert backend.repository.get_claim(first.claim_id) == first
        assert backend.view.counter(E2, KEY) is None
        assert backend.view.guard(E2, KEY, P2) is None

    # --- active count -----------------------------------------------------------------------

    def test_active_count_equals_stored_active_claims_after_each_operation(self, backend: Backend) -> None:
        def check() -> None:
            for engagement_id in (E1, E2):
                assert_counter_matches_claims(backend.view, engagement_id)

        add(backend, P1, [E1, E2])
        check()
        add(backend, P2, [E1])
        check()
        refused = backend.repository.read_limits(P3, KEY, [E1])
        add(backend, P3, [E1])  # a third active claim: the repository counts, the domain limits
        check()
        with pytest.raises(ConcurrentChange):
            backend.repository.create(NewClaims(claims=[new_claim(P3, E1)], snapshots=refused))
        check()
        add(backend, P2, [E2], at=LATER)  # expires P1's overdue claim in E2
        check()
        add(backend, P1, [E1], at=LATER)  # expires all three overdue claims in E1, P1's guard replaced
        check()
        counter = backend.view.counter(E1, KEY)
        assert counter is not None
        assert counter.active_count == 1
        assert counter.version == 4
        states = sorted(c.state.value for c in backend.view.claims_of(E1, KEY))
        assert states == ["expired", "expired", "expired", "pending_consent"]

    # --- expiry in the same transaction (rule 17) ----------------------------------------------

    def test_an_overdue_claim_of_the_same_partner_is_expired_and_its_guard_replaced(self, backend: Backend) -> None:
        (old,) = add(backend, P1, [E1])
        snapshots = backend.repository.read_limits(P1, KEY, [E1])
        assert snapshots[E1].partner_claim_id == old.claim_id
        assert snapshots[E1].overdue(LATER) == [Holder(old.claim_id, P1, old.consent_deadline)]

        new = new_claim(P1, E1, at=LATER)
        backend.repository.create(
            NewClaims(claims=[new], snapshots=snapshots, expire=overdue_expiries(backend, snapshots, LATER))
        )

        self.check_expired(backend, old)
        assert backend.view.guard(E1, KEY, P1) == new.claim_id
        counter = backend.view.counter(E1, KEY)
        assert counter is not None
        assert (counter.active_count, counter.version, counter.holders) == (1, 2, {new.claim_id})
        after = backend.repository.read_limits(P1, KEY, [E1])[E1]
        assert after.holders == (Holder(new.claim_id, P1, new.consent_deadline),)
        assert after.partner_claim_id == new.claim_id
        assert_counter_matches_claims(backend.view, E1)

    def test_an_overdue_claim_of_another_partner_is_expired_and_their_guard_deleted(self, backend: Backend) -> None:
        (theirs,) = add(backend, P1, [E1])
        (live,) = add(backend, P3, [E1], at=NOW + timedelta(days=5))  # not yet overdue at LATER
        snapshots = backend.repository.read_limits(P2, KEY, [E1])
        assert snapshots[E1].partner_claim_id is None

        new = new_claim(P2, E1, at=LATER)
        backend.repository.create(
            NewClaims(claims=[new], snapshots=snapshots, expire=overdue_expiries(backend, snapshots, LATER))
        )

        self.check_expired(backend, theirs)
        assert backend.view.guard(E1, KEY, P1) is None
        assert backend.view.guard(E1, KEY, P2) == new.claim_id
        assert backend.view.guard(E1, KEY, P3) == live.claim_id
        counter = backend.view.counter(E1, KEY)
        assert counter is not None
        assert (counter.active_count, counter.version) == (2, 3)
        assert counter.holders == {live.claim_id, new.claim_id}
        assert_counter_matches_claims(backend.view, E1)

    def test_expiry_in_one_engagement_and_a_fresh_counter_in_another(self, backend: Backend) -> None:
        (overdue,) = add(backend, P2, [E1])
        claims = add(backend, P1, [E1, E2], at=LATER)

        self.check_expired(backend, overdue)
        for claim in claims:
            counter = backend.view.counter(claim.engagement_id, KEY)
            assert counter is not None
            assert (counter.active_count, counter.holders) == (1, {claim.claim_id})
            assert_counter_matches_claims(backend.view, claim.engagement_id)
        assert backend.view.guard(E1, KEY, P2) is None

    def test_an_add_that_expires_more_claims_than_one_transaction_holds(self, backend: Backend) -> None:
        engagements = [f"e-many-{i}" for i in range(10)]  # the most one request may name
        for partner_id in MANY_PARTNERS[:4]:  # four overdue holders in each engagement: 30 + 4 * 10 * 2 writes
            add(backend, partner_id, engagements)
        old = [c for e in engagements for c in backend.view.claims_of(e, KEY)]

        claims = add_retrying(backend, MANY_PARTNERS[4], engagements, at=LATER)

        for claim in old:
            self.check_expired(backend, claim)
        for claim in claims:
            counter = backend.view.counter(claim.engagement_id, KEY)
            assert counter is not None
            assert (counter.active_count, counter.holders) == (1, {claim.claim_id})
            assert_counter_matches_claims(backend.view, claim.engagement_id)

    def check_expired(self, backend: Backend, before: Claim) -> None:
        stored = backend.repository.get_claim(before.claim_id)
        assert stored is not None
        assert stored.state is ClaimState.EXPIRED
        assert stored.version == before.version + 1
        assert stored.history[:-1] == before.history
        assert stored.history[-1] == HistoryEntry(
            at=before.consent_deadline,
            actor="system",
            from_=ClaimState.PENDING_CONSENT,
            to=ClaimState.EXPIRED,
            reason="consent deadline passed",
        )

    # --- later changes (ClaimChanges.apply) -----------------------------------------------------

    def test_a_claim_that_ends_releases_its_count_and_guard(self, backend: Backend) -> None:
        (mine,) = add(backend, P1, [E1])
        (theirs,) = add(backend, P2, [E1])
        cancelled = mine.transition(ClaimState.CANCELLED, at=NOW + timedelta(hours=1), actor=ACTOR, reason="no")

        backend.repository.apply(ClaimChange(before=mine, after=cancelled))

        assert backend.repository.get_claim(mine.claim_id) == cancelled
        counter = backend.view.counter(E1, KEY)
        assert counter is not None
        assert (counter.active_count, counter.version, counter.holders) == (1, 3, {theirs.claim_id})
        assert backend.view.guard(E1, KEY, P1) is None
        assert backend.view.guard(E1, KEY, P2) == theirs.claim_id
        assert_counter_matches_claims(backend.view, E1)
        (again,) = add(backend, P1, [E1])  # the partner may add the customer again
        assert backend.view.guard(E1, KEY, P1) == again.claim_id
        assert_counter_matches_claims(backend.view, E1)

    def test_a_new_deadline_moves_the_counted_holder(self, backend: Backend) -> None:
        (claim,) = add(backend, P1, [E1])
        requested = claim.transition(ClaimState.CONSENT_REQUESTED, at=NOW, actor=ACTOR, reason="consent requested")
        backend.repository.apply(ClaimChange(before=claim, after=requested))
        counter = backend.view.counter(E1, KEY)
        assert counter is not None
        assert counter.version == 1  # same deadline: the counter is not touched

        submission_deadline = NOW + timedelta(days=90)
        granted = requested.transition(
            ClaimState.CONSENT_GRANTED,
            at=NOW,
            actor="customer",
            reason="consent accepted",
            submission_deadline=submission_deadline,
        )
        backend.repository.apply(ClaimChange(before=requested, after=granted))

        snapshot = backend.repository.read_limits(P1, KEY, [E1])[E1]
        assert snapshot.version == 2
        assert snapshot.holders == (Holder(claim.claim_id, P1, submission_deadline),)
        assert snapshot.state_at(LATER).active_claims == 1  # past the consent deadline, still counted
        assert_counter_matches_claims(backend.view, E1)

    def test_a_change_from_a_stale_read_writes_nothing(self, backend: Backend) -> None:
        (claim,) = add(backend, P1, [E1])
        cancelled = claim.transition(ClaimState.CANCELLED, at=NOW, actor=ACTOR, reason="no")
        backend.repository.apply(ClaimChange(before=claim, after=cancelled))
        requested = claim.transition(ClaimState.CONSENT_REQUESTED, at=NOW, actor=ACTOR, reason="consent requested")

        with pytest.raises(ConcurrentChange):
            backend.repository.apply(ClaimChange(before=claim, after=requested))

        assert backend.repository.get_claim(claim.claim_id) == cancelled
        counter = backend.view.counter(E1, KEY)
        assert counter is not None
        assert (counter.active_count, counter.version, counter.holders) == (0, 2, set())
        assert_counter_matches_claims(backend.view, E1)

    def test_a_create_that_read_before_a_claim_ended_is_a_concurrent_change(self, backend: Backend) -> None:
        (mine,) = add(backend, P1, [E1])
        stale = backend.repository.read_limits(P2, KEY, [E1])
        cancelled = mine.transition(ClaimState.CANCELLED, at=NOW, actor=ACTOR, reason="no")
        backend.repository.apply(ClaimChange(before=mine, after=cancelled))

        with pytest.raises(ConcurrentChange):
            backend.repository.create(NewClaims(claims=[new_claim(P2, E1)], snapshots=stale))

        assert backend.view.claims_of(E1, KEY) == [cancelled]
        assert_counter_matches_claims(backend.view, E1)

    def test_the_sweep_and_an_add_expiring_the_same_claim_expire_it_once(self, backend: Backend) -> None:
        (overdue,) = add(backend, P1, [E1])
        snapshots = backend.repository.read_limits(P2, KEY, [E1])
        expiries = overdue_expiries(backend, snapshots, LATER)
        backend.repository.apply(ClaimChange(before=overdue, after=expired(overdue)))  # the sweep wins

        with pytest.raises(ConcurrentChange):
            backend.repository.create(
                NewClaims(claims=[new_claim(P2, E1, at=LATER)], snapshots=snapshots, expire=expiries)
            )

        self.check_expired(backend, overdue)
        assert_counter_matches_claims(backend.view, E1)
        (new,) = add(backend, P2, [E1], at=LATER)  # the retry reads again and succeeds
        counter = backend.view.counter(E1, KEY)
        assert counter is not None
        assert (counter.active_count, counter.holders) == (1, {new.claim_id})
        assert_counter_matches_claims(backend.view, E1)

    # --- reads ----------------------------------------------------------------------------------

    def test_read_limits_returns_holders_version_and_the_partners_guard(self, backend: Backend) -> None:
        (mine,) = add(backend, P1, [E1])
        (theirs,) = add(backend, P2, [E1], at=NOW + timedelta(hours=1))

        snapshots = backend.repository.read_limits(P1, KEY, [E1, E2])

        assert set(snapshots) == {E1, E2}
        assert snapshots[E1].engagement_id == E1
        assert snapshots[E1].customer_key == KEY
        assert snapshots[E1].version == 2
        assert sorted(snapshots[E1].holders, key=lambda h: h.claim_id) == sorted(
            [
                Holder(mine.claim_id, P1, mine.consent_deadline),
                Holder(theirs.claim_id, P2, theirs.consent_deadline),
            ],
            key=lambda h: h.claim_id,
        )
        assert snapshots[E1].partner_claim_id == mine.claim_id
        assert snapshots[E1].state_at(NOW).active_claims == 2
        assert snapshots[E1].state_at(NOW).partner_claim_id == mine.claim_id
        assert snapshots[E2] == LimitSnapshot(E2, KEY)
        assert backend.repository.read_limits(P3, KEY, [E1])[E1].partner_claim_id is None
        assert backend.repository.read_limits(P1, OTHER_KEY, [E1]) == {E1: LimitSnapshot(E1, OTHER_KEY)}

    def test_a_lookup_reads_reference_data_limits_a_known_customer_and_a_referral_at_once(
        self, backend: Backend
    ) -> None:
        assert backend.reference is not None
        assert backend.lookups is not None
        backend.reference.save(demo_data())
        (mine,) = add(backend, P1, [E1])
        (theirs,) = add(backend, P2, [E1], at=NOW + timedelta(hours=1))
        known = KnownCustomer(
            partner_id=P1,
            customer_id=KEY,
            identifier_type="tenant_id",
            identifier_value=FABRIKAM_TENANT,
            name="Fabrikam",
            customer_contact={"name": "Ana", "email": "ana@fabrikam.com", "phone": None, "language": "es"},
            partner_contact={"name": "Pat", "email": "pat@contoso.com", "phone": None},
            last_claim_id=mine.claim_id,
            known_since=NOW,
            updated_at=NOW,
            identifiers=(KEY, "domain:fabrikam.com"),  # every identifier it was checked with (issue 12.12)
        )
        referral = Referral(
            referral_id="r-contract",
            claim_id=mine.claim_id,
            partner_id=P1,
            engagement_id=E1,
            type=ReferralType.PARTNER_LED,
            status=ReferralStatus.ACTIVE,
            deal_size_usd=25000,
            customer=ReferralCustomer(identifier_type="tenant_id", identifier_value=FABRIKAM_TENANT, name="Fabrikam"),
            created_at=NOW,
            updated_at=NOW,
        )
        after = mine.model_copy(update={"version": mine.version + 1})
        backend.repository.apply(ClaimChange(before=mine, after=after, known_customer=known, referral=referral))
        fabrikam = Identifier(IdentifierType.TENANT_ID, FABRIKAM_TENANT)
        tailspin = Identifier(IdentifierType.TENANT_ID, TAILSPIN_TENANT)
        lookup = Lookup(
            location_id=CONTOSO_MADRID,
            engagement_ids=(MIGRATE, SECURITY, "e-unknown"),
            domains=("fabrikam.com", "unknown.example"),
            customers=(tailspin,),
            known_customer=(P1, KEY),
            referral_id="r-contract",
        ).with_customer(P1, fabrikam, [E1, E2])
        lookup = dataclasses.replace(lookup, limits=(*lookup.limits, LimitKeys(P3, OTHER_KEY, (E1,))))

        found = backend.lookups.look_up(lookup)

        reference = demo_data()
        assert found.location == next(loc for loc in reference.locations if loc.location_id == CONTOSO_MADRID)
        assert set(found.engagements) == {MIGRATE, SECURITY}
        assert found.engagements[MIGRATE] == next(e for e in reference.engagements if e.engagement_id == MIGRATE)
        assert found.tenants == {"fabrikam.com": FABRIKAM_TENANT}
        assert set(found.customers) == {fabrikam.key, tailspin.key}
        assert found.customers[fabrikam.key].identifier == fabrikam
        assert found.known_customer == known
        assert backend.repository.get_known_customer(P1, KEY) == known
        assert backend.repository.list_known_customers(P1) == [known]
        # Known again through its tenant only: it keeps the domain it was checked with before.
        again = dataclasses.replace(known, identifiers=(KEY,), name="Fabrikam again")
        later = after.model_copy(update={"version": after.version + 1})
        backend.repository.apply(ClaimChange(before=after, after=later, known_customer=again))
        assert backend.repository.get_known_customer(P1, KEY) == dataclasses.replace(
            again, identifiers=(KEY, "domain:fabrikam.com")
        )
        assert found.referral == referral
        assert found.limits[KEY] == backend.repository.read_limits(P1, KEY, [E1, E2])
        assert found.limits[KEY][E1].partner_claim_id == mine.claim_id
        assert {h.claim_id for h in found.limits[KEY][E1].holders} == {mine.claim_id, theirs.claim_id}
        assert found.limits[OTHER_KEY] == {E1: LimitSnapshot(E1, OTHER_KEY)}

    def test_a_lookup_of_absent_items_finds_nothing(self, backend: Backend) -> None:
        assert backend.lookups is not None
        found = backend.lookups.look_up(
            Lookup(
                location_id="0000000",
                engagement_ids=("e-unknown",),
                known_customer=(P1, KEY),
                referral_id="r-unknown",
            )
        )
        assert (found.location, found.engagements, found.known_customer, found.referral) == (None, {}, None, None)
        assert backend.lookups.look_up(Lookup()) == type(found)()

    def test_partner_claims_are_one_partners_active_or_terminal_claims_newest_first_in_pages(
        self, backend: Backend
    ) -> None:
        made = []
        for n, at in enumerate([NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2)]):
            key = f"tenant_id:00000000-0000-4000-8000-00000000000{n}"
            claim = new_claim(P1, E1, customer_key=key, at=at)
            snapshots = backend.repository.read_limits(P1, key, [E1])
            backend.repository.create(NewClaims(claims=[claim], snapshots=snapshots, expire=[]))
            made.append(claim.claim_id)
        add(backend, P2, [E1])  # another partner's claim in the same engagement
        add(backend, P1, [E2])  # the same partner's claim in another engagement
        first, more = backend.repository.partner_claims(P1, E1, terminal=False, before=None, limit=2)
        assert ([c.claim_id for c in first], more) == ([made[2], made[1]], True)
        rest, more = backend.repository.partner_claims(P1, E1, terminal=False, before=first[-1].position, limit=2)
        assert ([c.claim_id for c in rest], more) == ([made[0]], False)
        assert backend.repository.partner_claims(P1, E1, terminal=True, before=None, limit=10) == ([], False)

    def test_unknown_claims_are_absent(self, backend: Backend) -> None:
        (claim,) = add(backend, P1, [E1])
        assert backend.repository.get_claim("c-unknown") is None
        assert backend.repository.get_claims(["c-unknown", claim.claim_id]) == {claim.claim_id: claim}
        assert backend.repository.get_claims([]) == {}

    # --- hooks ----------------------------------------------------------------------------------

    def check_cancellation(self, error: ConcurrentChange, failed: set[int]) -> None:
        """Backends that report which write failed check it here (DynamoDB's CancellationReasons)."""


class DynamoDBClaimRepositoryContract(ClaimRepositoryContract):
    """The contract plus what only the DynamoDB item layout shows."""

    def check_cancellation(self, error: ConcurrentChange, failed: set[int]) -> None:
        cause = error.__cause__
        assert isinstance(cause, ClientError), repr(cause)
        codes = [str(r.get("Code")) for r in cause.response.get("CancellationReasons", [])]
        assert {i for i, code in enumerate(codes) if code not in {"None", ""}} == failed, codes

    def test_an_expired_claim_leaves_the_due_index_and_moves_to_the_done_tab(self, backend: Backend) -> None:
        assert isinstance(backend.view, DynamoDBStoreView)
        (old,) = add(backend, P1, [E1])
        before = self.raw_claim(backend.view, old.claim_id)
        assert old.due_at is not None
        assert before["due_at"] == isoformat(old.due_at)  # the first reminder, 7 days before the deadline
        assert before["GSI1PK"] == items.claims_tab_pk(P1, E1, terminal=False)

        add(backend, P2, [E1], at=LATER)

        after = self.raw_claim(backend.view, old.claim_id)
        assert "due_at" not in after
        assert "due_shard" not in after
        assert after["GSI1PK"] == items.claims_tab_pk(P1, E1, terminal=True)
        assert after["version"] == 2

    def test_the_counter_and_guard_items_hold_the_deadline(self, backend: Backend) -> None:
        assert isinstance(backend.view, DynamoDBStoreView)
        (claim,) = add(backend, P1, [E1])
        counter = backend.view.raw(items.counter_key(E1, KEY))
        guard = backend.view.raw(items.guard_key(E1, KEY, P1))
        assert counter is not None
        assert guard is not None
        assert counter[f"holder#{claim.claim_id}"] == {"partner_id": P1, "due": "2026-12-27T10:00:00.000000Z"}
        assert guard["claim_id"] == claim.claim_id
        assert guard["due"] == "2026-12-27T10:00:00.000000Z"

    @staticmethod
    def raw_claim(view: DynamoDBStoreView, claim_id: str) -> dict[str, Any]:
        found = view.raw(items.claim_key(claim_id))
        assert found is not None
        return found
