"""In-memory fakes of the storage ports, with the same all-or-nothing semantics, for fast domain tests."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import assert_never

from mci.domain import claim_effects
from mci.domain.claims import Claim
from mci.domain.errors import DependencyUnavailable, EmailRejected, SendingThrottled
from mci.domain.identifiers import Identifier
from mci.domain.metrics import NO_METRICS, BusinessMetrics, Count, change_counts
from mci.domain.ports import (
    ClaimChange,
    ConcurrentChange,
    ConsentTokenRecord,
    EmailMessage,
    Holder,
    KnownCustomer,
    LimitSnapshot,
    NewClaims,
    known_identifiers,
)
from mci.domain.reference import CustomerRecord, Engagement, Location, ReferenceData
from mci.domain.referrals import Referral, ReferralStatus


class MemoryReferenceRepository:
    def __init__(self, data: ReferenceData | None = None) -> None:
        self.engagements: dict[str, Engagement] = {}
        self.locations: dict[str, Location] = {}
        self.customers: dict[str, CustomerRecord] = {}
        self.domains: dict[str, str] = {}
        if data is not None:
            self.save(data)

    def list_engagements(self) -> list[Engagement]:
        return list(self.engagements.values())

    def get_engagements(self, engagement_ids: Sequence[str]) -> dict[str, Engagement]:
        return {e: self.engagements[e] for e in engagement_ids if e in self.engagements}

    def get_location(self, location_id: str) -> Location | None:
        return self.locations.get(location_id)

    def list_locations(self, partner_id: str) -> list[Location]:
        return [loc for loc in self.locations.values() if loc.partner_id == partner_id]

    def get_customer(self, identifier: Identifier) -> CustomerRecord | None:
        return self.customers.get(identifier.key)

    def get_customers(self, identifiers: Sequence[Identifier]) -> dict[str, CustomerRecord]:
        return {i.key: self.customers[i.key] for i in identifiers if i.key in self.customers}

    def tenants_of_domains(self, domains: Sequence[str]) -> dict[str, str]:
        return {d: self.domains[d] for d in domains if d in self.domains}

    def save(self, data: ReferenceData) -> dict[str, int]:
        self.engagements.update({e.engagement_id: e for e in data.engagements})
        self.locations.update({loc.location_id: loc for loc in data.locations})
        self.customers.update({c.identifier.key: c for c in data.customers})
        self.domains.update({d.domain: d.tenant_id for d in data.domains})
        return {
            "engagements": len(data.engagements),
            "locations": len(data.locations),
            "customers": len(data.customers),
            "domains": len(data.domains),
        }


@dataclass
class _Counter:
    version: int = 0
    holders: dict[str, Holder] = field(default_factory=dict)


class MemoryClaimRepository:
    def __init__(self, metrics: BusinessMetrics = NO_METRICS) -> None:
        self._metrics = metrics  # counts each change once it has committed (mci.domain.metrics)
        self.claims: dict[str, Claim] = {}
        self.counters: dict[tuple[str, str], _Counter] = {}
        self.guards: dict[tuple[str, str, str], str] = {}
        self.tokens: dict[str, ConsentTokenRecord] = {}
        self.known: dict[tuple[str, str], KnownCustomer] = {}
        self.referrals: dict[str, Referral] = {}
        self._lock = threading.Lock()

    def active_count(self, engagement_id: str, customer_key: str) -> int:
        counter = self.counters.get((engagement_id, customer_key))
        return len(counter.holders) if counter else 0

    def get_claim(self, claim_id: str) -> Claim | None:
        return self.claims.get(claim_id)

    def get_claims(self, claim_ids: Sequence[str]) -> dict[str, Claim]:
        return {c: self.claims[c] for c in claim_ids if c in self.claims}

    def read_limits(
        self, partner_id: str, customer_key: str, engagement_ids: Sequence[str]
    ) -> dict[str, LimitSnapshot]:
        with self._lock:
            snapshots = {}
            for engagement_id in engagement_ids:
                counter = self.counters.get((engagement_id, customer_key), _Counter())
                snapshots[engagement_id] = LimitSnapshot(
                    engagement_id=engagement_id,
                    customer_key=customer_key,
                    version=counter.version,
                    holders=tuple(counter.holders.values()),
                    partner_claim_id=self.guards.get((engagement_id, customer_key, partner_id)),
                )
            return snapshots

    def create(self, new: NewClaims) -> None:
        self._write(claim_effects.creation_effects(new))

    def apply(self, change: ClaimChange) -> None:
        self._write(claim_effects.change_effects(change))
        self._metrics.count(change_counts(change))

    def _write(self, effects: Sequence[claim_effects.Effect]) -> None:
        """All or nothing, as one transaction: every condition is checked before anything is written."""
        with self._lock:
            for effect in effects:
                refusal = self._refusal(effect)
                if refusal is not None:
                    raise ConcurrentChange(refusal)
            for effect in effects:
                self._apply(effect)

    def _refusal(self, effect: claim_effects.Effect) -> str | None:
        """Why the effect's condition fails on what is stored now; None when it holds."""
        match effect:
            case claim_effects.WriteClaim(claim=claim, read_version=read):
                stored = self.claims.get(claim.claim_id)
                if (stored.version if stored else None) != read:
                    return "claim id taken" if read is None else "claim changed"
            case claim_effects.CountHolder(counter=counter, read_version=read):
                if self.counters.get(counter, _Counter()).version != read:
                    return "counter changed"
            case (
                claim_effects.ReleaseHolder(counter=counter, claim_id=claim_id)
                | claim_effects.MoveHolder(counter=counter, holder=Holder(claim_id))
            ):
                if claim_id not in self.counters.get(counter, _Counter()).holders:
                    return "claim not counted"
            case (
                claim_effects.PutGuard(guard=guard, replaces=replaces)
                | claim_effects.DeleteGuard(guard=guard, claim_id=replaces)
            ):
                if self.guards.get(guard) != replaces:
                    return "guard changed"
            case claim_effects.CloseReferral(referral_id=referral_id):
                if referral_id not in self.referrals:
                    return "no such referral"
            case claim_effects.PutToken(record=record):
                if record.token_hash in self.tokens:
                    return "token exists"
        return None

    def _apply(self, effect: claim_effects.Effect) -> None:
        match effect:
            case claim_effects.WriteClaim(claim=claim):
                self.claims[claim.claim_id] = claim
            case claim_effects.CountHolder(counter=counter, holder=holder, drop=drop):
                stored = self.counters.setdefault(counter, _Counter())
                for claim_id in drop:
                    del stored.holders[claim_id]
                stored.holders[holder.claim_id] = holder
                stored.version += 1
            case claim_effects.ReleaseHolder(counter=counter, claim_id=claim_id):
                stored = self.counters[counter]
                del stored.holders[claim_id]
                stored.version += 1
            case claim_effects.MoveHolder(counter=counter, holder=holder):
                stored = self.counters[counter]
                stored.holders[holder.claim_id] = holder
                stored.version += 1
            case claim_effects.PutGuard(guard=guard, claim_id=claim_id):
                self.guards[guard] = claim_id
            case claim_effects.DeleteGuard(guard=guard):
                del self.guards[guard]
            case claim_effects.CloseReferral(referral_id=referral_id, state=state, at=at):
                referral = self.referrals[referral_id]
                self.referrals[referral_id] = referral.model_copy(
                    update={"status": ReferralStatus.CLOSED, "closed_with_state": state, "updated_at": at}
                )
            case claim_effects.PutReferral(referral=referral):
                self.referrals[referral.referral_id] = referral
            case claim_effects.DeleteToken(token_hash=token_hash):
                self.tokens.pop(token_hash, None)
            case claim_effects.PutToken(record=record):
                self.tokens[record.token_hash] = record
            case claim_effects.UpsertKnownCustomer(known=known):
                earlier = self.known.get((known.partner_id, known.customer_id))
                merged = dict.fromkeys((*known.identifiers, *(earlier.identifiers if earlier else ())))
                self.known[(known.partner_id, known.customer_id)] = dataclasses.replace(
                    known, identifiers=known_identifiers(known.customer_id, merged)
                )
            case _:
                assert_never(effect)

    def partner_claims(
        self, partner_id: str, engagement_id: str, *, terminal: bool, before: str | None, limit: int
    ) -> tuple[list[Claim], bool]:
        mine = sorted(
            (
                c
                for c in self.claims.values()
                if c.partner_id == partner_id
                and c.engagement_id == engagement_id
                and c.state.is_terminal == terminal
                and (before is None or c.position < before)
            ),
            key=lambda c: c.position,
            reverse=True,
        )
        return mine[:limit], len(mine) > limit

    def due_claims(self, now: datetime, limit: int) -> list[Claim]:
        due = [c for c in self.claims.values() if c.due_at is not None and c.due_at <= now]
        return sorted(due, key=lambda c: c.due_at or now)[:limit]

    def get_referral(self, referral_id: str) -> Referral | None:
        return self.referrals.get(referral_id)

    def get_token(self, token_hash: str) -> ConsentTokenRecord | None:
        return self.tokens.get(token_hash)

    def list_known_customers(self, partner_id: str) -> list[KnownCustomer]:
        return [k for (partner, _), k in self.known.items() if partner == partner_id]

    def get_known_customer(self, partner_id: str, customer_id: str) -> KnownCustomer | None:
        return self.known.get((partner_id, customer_id))


class MemoryMailer:
    """Keeps what it sends; ``fail_next`` makes the next sends fail (SES unavailable); ``throttle_after`` sends that
    many more, then answers every send as SES at its sending rate does (``throttled`` counts those calls);
    ``rejected`` addresses are refused for good."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.fail_next = 0
        self.throttle_after: int | None = None
        self.throttled = 0
        self.rejected: set[str] = set()  # addresses SES refuses for good (rule 29)

    def send(self, message: EmailMessage) -> str:
        if message.to in self.rejected:
            raise EmailRejected(f"MessageRejected: {message.to}")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise DependencyUnavailable("SES is throttling; retry shortly.", retry_after_seconds=1)
        if self.throttle_after is not None:
            if self.throttle_after == 0:
                self.throttled += 1
                raise SendingThrottled("Maximum sending rate exceeded.")
            self.throttle_after -= 1
        self.sent.append(message)
        return f"memory-{len(self.sent)}"


class MemoryMetrics:
    """The business metrics port in memory: every count, in order."""

    def __init__(self) -> None:
        self.counts: list[Count] = []

    def count(self, counts: Sequence[Count]) -> None:
        self.counts += counts

    def totals(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
        """How many of each metric with its dimensions."""
        found: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        for count in self.counts:
            key = (count.name, count.dimensions)
            found[key] = found.get(key, 0) + count.value
        return found
