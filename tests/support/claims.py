"""Claims, store views and the rule-11 race, shared by the repository contract on every backend.

A *store view* reads what a backend really holds (counters, guards, claims) around the repository, so
the contract can check stored state instead of trusting the repository's own reads.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from mci.adapters import dynamodb_items as items
from mci.adapters.dynamodb_claims import HOLDER_PREFIX, DynamoDBClaimRepository, claim_from_item
from mci.adapters.dynamodb_lookups import DynamoDBLookups
from mci.adapters.dynamodb_reference import DynamoDBReferenceRepository
from mci.adapters.memory import MemoryClaimRepository
from mci.domain.claims import (
    ACTIVE_STATES,
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
from mci.domain.commands import AddCustomer
from mci.domain.errors import Conflict, DependencyUnavailable
from mci.domain.identifiers import IdentifierType
from mci.domain.nomination import Nominations
from mci.domain.principal import Principal
from mci.domain.reference import ReferenceData
from mci.settings import Settings
from tests.support.reference import (
    ADATUM,
    ADATUM_LISBON,
    CONTOSO,
    CONTOSO_MADRID,
    FABRIKAM_TENANT,
    MIGRATE,
    NORTHWIND,
    NORTHWIND_DUBLIN,
    NOW,
    add_customer_body,
    demo_json,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import Clock, FixedClock

KEY = f"tenant_id:{FABRIKAM_TENANT}"
CONSENT_WINDOW = timedelta(days=30)
REMINDER_DAYS = (7, 1)
LIMIT_CODES = frozenset({"active_claim_limit_reached", "duplicate_claim"})


# ---------------------------------------------------------------- claims


def new_claim(
    partner_id: str,
    engagement_id: str,
    *,
    customer_key: str = KEY,
    at: datetime = NOW,
    claim_id: str | None = None,
    location_id: str = CONTOSO_MADRID,
) -> Claim:
    """A claim as Nominations creates it: pending consent, deadline = at + 30 days, reminders, one history entry."""
    type_, _, value = customer_key.partition(":")
    deadline = consent_deadline_for(at, CONSENT_WINDOW.days)
    return Claim(
        claim_id=claim_id or f"c-{uuid.uuid4()}",
        partner_id=partner_id,
        location_id=location_id,
        engagement_id=engagement_id,
        friendly_name="Fabrikam migration",
        identifier=ClaimIdentifier(type=IdentifierType(type_), value=value),
        customer_key=customer_key,
        origin=Origin.ADDED,
        state=ClaimState.PENDING_CONSENT,
        customer_contact=CustomerContact(name="Ana García", email="ana@fabrikam.com", language="es"),
        partner_contact=PartnerContact(name="Sam Lee", email="sam@contoso-partners.com"),
        consent_deadline=deadline,
        pending_reminders=reminders_for(at, deadline, list(REMINDER_DAYS)),
        created_at=at,
        updated_at=at,
        history=[
            HistoryEntry(at=at, actor=f"partner:{partner_id}/user:u", to=ClaimState.PENDING_CONSENT, reason="added")
        ],
    )


def expired(claim: Claim) -> Claim:
    """The overdue claim as Nominations expires it in the transaction that replaces it (rule 17)."""
    deadline = claim.deadline
    assert deadline is not None, "only a claim with a deadline can expire"
    return claim.expired_at_deadline()


# ---------------------------------------------------------------- store views


@dataclass(frozen=True)
class StoredCounter:
    active_count: int
    version: int
    holders: set[str]


class StoreView(Protocol):
    """What a backend holds, read around the repository under test."""

    def counter(self, engagement_id: str, customer_key: str) -> StoredCounter | None: ...

    def guard(self, engagement_id: str, customer_key: str, partner_id: str) -> str | None: ...

    def claims_of(self, engagement_id: str, customer_key: str) -> list[Claim]: ...


class MemoryStoreView:
    def __init__(self, repository: MemoryClaimRepository) -> None:
        self.repository = repository

    def counter(self, engagement_id: str, customer_key: str) -> StoredCounter | None:
        counter = self.repository.counters.get((engagement_id, customer_key))
        if counter is None:
            return None
        return StoredCounter(
            active_count=self.repository.active_count(engagement_id, customer_key),
            version=counter.version,
            holders=set(counter.holders),
        )

    def guard(self, engagement_id: str, customer_key: str, partner_id: str) -> str | None:
        return self.repository.guards.get((engagement_id, customer_key, partner_id))

    def claims_of(self, engagement_id: str, customer_key: str) -> list[Claim]:
        return [
            c
            for c in self.repository.claims.values()
            if c.engagement_id == engagement_id and c.customer_key == customer_key
        ]


class DynamoDBStoreView:
    """Reads the single table directly (a Scan is fine here: every test has its own fresh table)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def raw(self, key: items.Item) -> dict[str, Any] | None:
        found = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return items.deserialize(found) if found else None

    def counter(self, engagement_id: str, customer_key: str) -> StoredCounter | None:
        values = self.raw(items.counter_key(engagement_id, customer_key))
        if values is None:
            return None
        return StoredCounter(
            active_count=int(values["active_count"]),
            version=int(values["version"]),
            holders={name[len(HOLDER_PREFIX) :] for name in values if name.startswith(HOLDER_PREFIX)},
        )

    def guard(self, engagement_id: str, customer_key: str, partner_id: str) -> str | None:
        values = self.raw(items.guard_key(engagement_id, customer_key, partner_id))
        return None if values is None else str(values["claim_id"])

    def claims_of(self, engagement_id: str, customer_key: str) -> list[Claim]:
        found: list[Claim] = []
        for page in self.client.get_paginator("scan").paginate(
            TableName=self.table,
            ConsistentRead=True,
            FilterExpression="#type = :claim AND engagement_id = :engagement AND customer_key = :key",
            ExpressionAttributeNames={"#type": "type"},
            ExpressionAttributeValues={
                ":claim": {"S": "claim"},
                ":engagement": {"S": engagement_id},
                ":key": {"S": customer_key},
            },
        ):
            found += [claim_from_item(item) for item in page.get("Items", [])]
        return found


def assert_counter_matches_claims(view: StoreView, engagement_id: str, customer_key: str = KEY) -> None:
    """Rule 11: the stored active count equals the stored active claims, and so do holders and guards."""
    claims = view.claims_of(engagement_id, customer_key)
    active = {c.claim_id: c for c in claims if c.state in ACTIVE_STATES}
    counter = view.counter(engagement_id, customer_key)
    if counter is None:
        assert not active, f"active claims {sorted(active)} but no counter"
        return
    assert counter.active_count == len(active), (counter, sorted(active))
    assert counter.holders == set(active), (counter, sorted(active))
    for claim in claims:
        guard = view.guard(engagement_id, customer_key, claim.partner_id)
        mine = [c for c in active.values() if c.partner_id == claim.partner_id]
        assert len(mine) <= 1, f"partner {claim.partner_id} holds {len(mine)} active claims"
        assert guard == (mine[0].claim_id if mine else None), (claim.partner_id, guard, mine)


# ---------------------------------------------------------------- the rule-11 race

RACE_PARTNERS: tuple[tuple[str, str], ...] = (
    (CONTOSO, CONTOSO_MADRID),
    (NORTHWIND, NORTHWIND_DUBLIN),
    (ADATUM, ADATUM_LISBON),
)
RACE_LIMIT = 2


def race_reference_data() -> ReferenceData:
    """The demo data with the race's preconditions made explicit: limit 2, three partners, one location each."""
    data = demo_json()
    for engagement in data["engagements"]:
        if engagement["engagement_id"] == MIGRATE:
            engagement["max_active_claims_per_customer"] = RACE_LIMIT
    locations = {loc["location_id"]: loc for loc in data["locations"]}
    for partner_id, location_id in RACE_PARTNERS:
        location = locations[location_id]
        assert location["partner_id"] == partner_id
        location["enrolled_in_mci"] = True
        if MIGRATE not in location["eligible_engagements"]:
            location["eligible_engagements"].append(MIGRATE)
    return ReferenceData.model_validate(data)


def dynamodb_nominations(client: DynamoDBClient, table_name: str, clock: Clock) -> Nominations:
    """Nominations over the DynamoDB adapters, as mci.wiring.services() builds it, on the given client."""
    return Nominations(
        reference=DynamoDBReferenceRepository(client, table_name),
        claims=DynamoDBClaimRepository(client, table_name),
        clock=clock,
        retry=Settings().conflict_retry,
        lookups=DynamoDBLookups(client, table_name),
    )


@dataclass
class RaceOutcome:
    created: list[Claim] = field(default_factory=list)
    conflicts: Counter[str] = field(default_factory=Counter)
    unavailable: list[DependencyUnavailable] = field(default_factory=list)
    unexpected: list[BaseException] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"created={len(self.created)} conflicts={dict(self.conflicts)} "
            f"unavailable={len(self.unavailable)} unexpected={[repr(e) for e in self.unexpected]}"
        )


def race_add_customer(
    nominations: Nominations,
    *,
    requests: int = 50,
    partners: Sequence[tuple[str, str]] = RACE_PARTNERS,
    engagement_id: str = MIGRATE,
) -> RaceOutcome:
    """``requests`` simultaneous add_customer calls for one customer, spread over the partners.

    Every thread builds its request, then waits at a barrier so all of them call at once.
    """
    barrier = threading.Barrier(requests)

    def one(index: int) -> list[Claim]:
        partner_id, location_id = partners[index % len(partners)]
        principal = Principal(partner_id, roles=frozenset({"incentives_user"}), user_id=f"user-{index}")
        command = AddCustomer.model_validate(add_customer_body(location_id=location_id, engagement_ids=[engagement_id]))
        barrier.wait(timeout=120)
        return nominations.add_customer(principal, command)

    outcome = RaceOutcome()
    with ThreadPoolExecutor(max_workers=requests) as pool:
        futures = [pool.submit(one, i) for i in range(requests)]
        for future in futures:
            try:
                outcome.created += future.result(timeout=300)
            except Conflict as conflict:
                outcome.conflicts[conflict.code] += 1
            except DependencyUnavailable as unavailable:
                outcome.unavailable.append(unavailable)
            except Exception as error:
                outcome.unexpected.append(error)
    return outcome


def seed_overdue_claim(nominations: Nominations, clock: FixedClock) -> Claim:
    """One claim of the first race partner, made a consent window ago: overdue when the race starts."""
    partner_id, location_id = RACE_PARTNERS[0]
    command = AddCustomer.model_validate(add_customer_body(location_id=location_id, engagement_ids=[MIGRATE]))
    (claim,) = nominations.add_customer(Principal(partner_id, roles=frozenset({"incentives_user"})), command)
    clock.advance(CONSENT_WINDOW + timedelta(days=1))
    return claim


def assert_expired_once(view: StoreView, claim: Claim) -> None:
    (stored,) = [c for c in view.claims_of(claim.engagement_id, claim.customer_key) if c.claim_id == claim.claim_id]
    assert stored.state is ClaimState.EXPIRED
    assert stored.version == claim.version + 1
    assert [h.to for h in stored.history] == [ClaimState.PENDING_CONSENT, ClaimState.EXPIRED]


def assert_race_held_the_limit(
    outcome: RaceOutcome, view: StoreView, *, requests: int = 50, engagement_id: str = MIGRATE
) -> None:
    """Rule 11: exactly as many succeed as the limit allows, one per partner, and the losers get 409."""
    assert not outcome.unexpected, outcome.summary()
    assert len(outcome.created) == RACE_LIMIT, outcome.summary()
    partners = [c.partner_id for c in outcome.created]
    assert len(set(partners)) == len(partners), f"a partner won twice: {partners}"
    assert set(outcome.conflicts) <= LIMIT_CODES, outcome.summary()
    total = len(outcome.created) + sum(outcome.conflicts.values()) + len(outcome.unavailable)
    assert total == requests, outcome.summary()
    stored = [c for c in view.claims_of(engagement_id, KEY) if c.state in ACTIVE_STATES]
    assert {c.claim_id for c in stored} == {c.claim_id for c in outcome.created}, outcome.summary()
    counter = view.counter(engagement_id, KEY)
    assert counter is not None
    assert counter.active_count == RACE_LIMIT, counter
    assert_counter_matches_claims(view, engagement_id)
