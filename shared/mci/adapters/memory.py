"""In-memory fakes of the storage ports, with the same all-or-nothing semantics, for fast domain tests."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mci.domain.claims import Claim
from mci.domain.errors import DependencyUnavailable, EmailRejected
from mci.domain.identifiers import Identifier
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
    def __init__(self) -> None:
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
        with self._lock:
            expiring = {c.claim_id for c in new.expire}
            for claim in new.claims:
                snapshot = new.snapshots[claim.engagement_id]
                counter = self.counters.get((claim.engagement_id, claim.customer_key), _Counter())
                guard = self.guards.get((claim.engagement_id, claim.customer_key, claim.partner_id))
                if counter.version != snapshot.version or guard != snapshot.partner_claim_id:
                    raise ConcurrentChange("counter or guard changed")
                if claim.claim_id in self.claims:
                    raise ConcurrentChange("claim id taken")
            for expired in new.expire:
                stored = self.claims.get(expired.claim_id)
                if stored is None or stored.version != expired.version - 1:
                    raise ConcurrentChange("expiring claim changed")
            for expired in new.expire:
                self.claims[expired.claim_id] = expired
                self._close_referral(expired)
                self.guards.pop((expired.engagement_id, expired.customer_key, expired.partner_id), None)
            for claim in new.claims:
                key = (claim.engagement_id, claim.customer_key)
                counter = self.counters.setdefault(key, _Counter())
                for claim_id in expiring & set(counter.holders):
                    del counter.holders[claim_id]
                counter.holders[claim.claim_id] = Holder(claim.claim_id, claim.partner_id, claim.deadline)
                counter.version += 1
                self.guards[(claim.engagement_id, claim.customer_key, claim.partner_id)] = claim.claim_id
                self.claims[claim.claim_id] = claim

    def apply(self, change: ClaimChange) -> None:
        before, after = change.before, change.after
        with self._lock:
            stored = self.claims.get(before.claim_id)
            if stored is None or stored.version != before.version:
                raise ConcurrentChange("claim changed")
            if change.put_token is not None and change.put_token.token_hash in self.tokens:
                raise ConcurrentChange("token exists")
            counter = self.counters.get((after.engagement_id, after.customer_key))
            if counter is None or after.claim_id not in counter.holders:
                if not before.state.is_terminal:
                    raise ConcurrentChange("claim not counted")
            elif after.state.is_terminal and not before.state.is_terminal:
                del counter.holders[after.claim_id]
                counter.version += 1
                self.guards.pop((after.engagement_id, after.customer_key, after.partner_id), None)
            elif after.deadline != before.deadline:
                counter.holders[after.claim_id] = Holder(after.claim_id, after.partner_id, after.deadline)
                counter.version += 1
            if before.consent_token_hash and before.consent_token_hash != after.consent_token_hash:
                self.tokens.pop(before.consent_token_hash, None)
            if change.put_token is not None:
                self.tokens[change.put_token.token_hash] = change.put_token
            if after.state.is_terminal and not before.state.is_terminal:
                self._close_referral(after)
            if change.referral is not None:
                self.referrals[change.referral.referral_id] = change.referral
            if change.known_customer is not None:
                known = change.known_customer
                earlier = self.known.get((known.partner_id, known.customer_id))
                merged = dict.fromkeys((*known.identifiers, *(earlier.identifiers if earlier else ())))
                self.known[(known.partner_id, known.customer_id)] = dataclasses.replace(
                    known, identifiers=known_identifiers(known.customer_id, merged)
                )
            self.claims[after.claim_id] = after

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

    def _close_referral(self, ended: Claim) -> None:
        referral = self.referrals.get(ended.referral_id) if ended.referral_id else None
        if referral is not None:
            self.referrals[referral.referral_id] = referral.model_copy(
                update={
                    "status": ReferralStatus.CLOSED,
                    "closed_with_state": ended.state,
                    "updated_at": ended.updated_at,
                }
            )

    def get_referral(self, referral_id: str) -> Referral | None:
        return self.referrals.get(referral_id)

    def get_token(self, token_hash: str) -> ConsentTokenRecord | None:
        return self.tokens.get(token_hash)

    def list_known_customers(self, partner_id: str) -> list[KnownCustomer]:
        return [k for (partner, _), k in self.known.items() if partner == partner_id]

    def get_known_customer(self, partner_id: str, customer_id: str) -> KnownCustomer | None:
        return self.known.get((partner_id, customer_id))


class MemoryMailer:
    """Keeps what it sends; ``fail_next`` makes the next sends throttle, as SES can; ``rejected`` addresses are
    refused for good."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.fail_next = 0
        self.rejected: set[str] = set()  # addresses SES refuses for good (rule 29)

    def send(self, message: EmailMessage) -> str:
        if message.to in self.rejected:
            raise EmailRejected(f"MessageRejected: {message.to}")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise DependencyUnavailable("SES is throttling; retry shortly.", retry_after_seconds=1)
        self.sent.append(message)
        return f"memory-{len(self.sent)}"
