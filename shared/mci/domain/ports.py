"""The small interfaces the domain needs from storage; adapters implement them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from mci.domain.claims import Claim
from mci.domain.eligibility import LimitState
from mci.domain.identifiers import Identifier
from mci.domain.reference import CustomerRecord, Engagement, Location, ReferenceData

if TYPE_CHECKING:
    from mci.domain.events import DomainEvent
    from mci.domain.referrals import Referral


@dataclass(frozen=True, slots=True)
class Holder:
    """One active claim counted by a limit counter, with its current deadline (None: none)."""

    claim_id: str
    partner_id: str
    due: datetime | None

    def overdue(self, now: datetime) -> bool:
        return self.due is not None and now >= self.due


@dataclass(frozen=True, slots=True)
class LimitSnapshot:
    """The counter and the caller's uniqueness guard for one engagement and customer key, as read."""

    engagement_id: str
    customer_key: str
    version: int = 0
    holders: tuple[Holder, ...] = ()
    partner_claim_id: str | None = None

    def overdue(self, now: datetime) -> list[Holder]:
        return [h for h in self.holders if h.overdue(now)]

    def state_at(self, now: datetime) -> LimitState:
        """Rule 17: overdue claims no longer count, even before the sweep writes them."""
        live = [h for h in self.holders if not h.overdue(now)]
        mine = self.partner_claim_id if any(h.claim_id == self.partner_claim_id for h in live) else None
        return LimitState(active_claims=len(live), partner_claim_id=mine)


@dataclass(frozen=True, slots=True)
class NewClaims:
    """What one add or claim request writes, all or nothing."""

    claims: Sequence[Claim]
    snapshots: Mapping[str, LimitSnapshot]
    expire: Sequence[Claim] = field(default_factory=tuple)


class ConcurrentChange(Exception):
    """What was read changed before the write; re-read and decide again."""


@dataclass(frozen=True, slots=True)
class LimitKeys:
    """The limit counters of one customer key in some engagements, and one partner's guards on them."""

    partner_id: str
    customer_key: str
    engagement_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Lookup:
    """Items whose keys are known at the same moment, to be read together (docs/data-model.md)."""

    location_id: str | None = None
    engagement_ids: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    customers: tuple[Identifier, ...] = ()
    limits: tuple[LimitKeys, ...] = ()
    known_customer: tuple[str, str] | None = None  # (partner_id, customer_id)
    referral_id: str | None = None

    def with_customer(self, partner_id: str, identifier: Identifier, engagement_ids: Sequence[str]) -> Lookup:
        """Also the customer's record, and its counters and the partner's guards in the engagements."""
        limits = LimitKeys(partner_id, identifier.key, tuple(engagement_ids))
        return replace(self, customers=(*self.customers, identifier), limits=(*self.limits, limits))


@dataclass(frozen=True, slots=True)
class Found:
    """What a Lookup found; absent items are missing from the maps (or None), never an error."""

    location: Location | None = None
    engagements: dict[str, Engagement] = field(default_factory=dict)
    tenants: dict[str, str] = field(default_factory=dict)  # domain -> tenant id
    customers: dict[str, CustomerRecord] = field(default_factory=dict)  # by identifier key
    limits: dict[str, dict[str, LimitSnapshot]] = field(default_factory=dict)  # customer key -> engagement id
    known_customer: KnownCustomer | None = None
    referral: Referral | None = None


class Lookups(Protocol):
    def look_up(self, lookup: Lookup) -> Found:
        """Every item of the lookup, in one round trip where the store allows it (one BatchGetItem).

        Strongly consistent when the lookup holds limits, as ``read_limits``: they condition the write
        that follows. Every requested limit has a snapshot (an empty one when nothing is counted yet).
        """
        ...


class ReferenceRepository(Protocol):
    def list_engagements(self) -> list[Engagement]: ...

    def get_engagements(self, engagement_ids: Sequence[str]) -> dict[str, Engagement]: ...

    def get_location(self, location_id: str) -> Location | None: ...

    def list_locations(self, partner_id: str) -> list[Location]: ...

    def get_customer(self, identifier: Identifier) -> CustomerRecord | None: ...

    def get_customers(self, identifiers: Sequence[Identifier]) -> dict[str, CustomerRecord]: ...

    def tenants_of_domains(self, domains: Sequence[str]) -> dict[str, str]: ...

    def save(self, data: ReferenceData) -> dict[str, int]: ...


class ClaimRepository(Protocol):
    def read_limits(
        self, partner_id: str, customer_key: str, engagement_ids: Sequence[str]
    ) -> dict[str, LimitSnapshot]:
        """Counters and the partner's guards, strongly consistent."""
        ...

    def create(self, new: NewClaims) -> None:
        """Write the claims, counters, guards and expiries in one transaction; ConcurrentChange if stale."""
        ...

    def get_claims(self, claim_ids: Sequence[str]) -> dict[str, Claim]: ...

    def get_claim(self, claim_id: str) -> Claim | None: ...

    def get_known_customer(self, partner_id: str, customer_id: str) -> KnownCustomer | None: ...


@dataclass(frozen=True, slots=True)
class ConsentPageContext:
    """What the consent page shows, captured when the email was sent, so the page reads one item."""

    language: str
    partner_name: str
    engagement_name: str
    customer_name: str
    submission_window_days: int


@dataclass(frozen=True, slots=True)
class ConsentTokenRecord:
    """A consent link as stored: only the hash of the token, never the token itself (rule 15)."""

    token_hash: str
    claim_id: str
    partner_id: str
    expires_at: datetime
    page: ConsentPageContext


@dataclass(frozen=True, slots=True)
class KnownCustomer:
    """Rule 16: a customer that granted consent on a claim of the partner.

    ``customer_id`` is the checked identifier's key (rule 3: the key for limits and uniqueness);
    ``identifiers`` every identifier key it was checked with (a domain and its resolved tenant), key first,
    so claiming it can use one the engagement accepts. A store adds a write's identifiers to the stored ones.
    """

    partner_id: str
    customer_id: str
    identifier_type: str
    identifier_value: str
    name: str
    customer_contact: dict[str, object]
    partner_contact: dict[str, object]
    last_claim_id: str
    known_since: datetime
    updated_at: datetime
    identifiers: tuple[str, ...] = ()


def known_identifiers(customer_id: str, identifiers: Iterable[str]) -> tuple[str, ...]:
    """A known customer's identifier keys in one order: its key first, then the others sorted."""
    return (customer_id, *sorted(set(identifiers) - {customer_id}))


@dataclass(frozen=True, slots=True)
class ClaimChange:
    """One state change of one claim, written atomically with everything that depends on it.

    What it writes is decided by ``mci.domain.claim_effects.change_effects``: ``after`` only if the stored
    claim is still ``before`` (same version); the limit counter and guard released when ``after`` is
    terminal, with the claim's referral closed (rule 25); the counted deadline moved when it changes; the
    old consent token deleted when the hash changes; ``put_token``, ``referral`` and ``known_customer``.
    """

    before: Claim
    after: Claim
    put_token: ConsentTokenRecord | None = None
    known_customer: KnownCustomer | None = None
    referral: Referral | None = None


class ClaimChanges(Protocol):
    def apply(self, change: ClaimChange) -> None:
        """Atomic; ConcurrentChange when the claim moved on since ``before`` was read."""
        ...

    def get_claim(self, claim_id: str) -> Claim | None: ...

    def get_token(self, token_hash: str) -> ConsentTokenRecord | None: ...

    def list_known_customers(self, partner_id: str) -> list[KnownCustomer]: ...

    def get_known_customer(self, partner_id: str, customer_id: str) -> KnownCustomer | None: ...

    def get_referral(self, referral_id: str) -> Referral | None: ...


@dataclass(frozen=True, slots=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str
    tags: Mapping[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> str:
        """Hand the message to the mail service and return its id; DependencyUnavailable when throttled."""
        ...


class DueClaims(Protocol):
    def due_claims(self, now: datetime, limit: int) -> list[Claim]:
        """Claims whose next reminder or deadline is at or before ``now``, read from the sparse due index."""
        ...


class PartnerClaims(Protocol):
    def partner_claims(
        self, partner_id: str, engagement_id: str, *, terminal: bool, before: str | None, limit: int
    ) -> tuple[list[Claim], bool]:
        """A page of the partner's active or terminal claims in an engagement, newest first, before a position."""
        ...


class EventBus(Protocol):
    def publish(self, events: Sequence[DomainEvent]) -> list[bool]:
        """Publish in order; one flag per event, False where the bus refused it."""
        ...
