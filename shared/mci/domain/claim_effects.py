"""What a claim write does to the items around the claim, decided once, as data (STYLE 17).

A store writes these effects all or nothing, each under its condition, and decides nothing itself: the
DynamoDB adapter turns each into one transaction item, the in-memory fake into one dict update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeAlias

from mci.domain.claims import Claim, ClaimState
from mci.domain.ports import ClaimChange, ConsentTokenRecord, Holder, KnownCustomer, NewClaims
from mci.domain.referrals import Referral


class Counter(NamedTuple):
    """The limit counter of one customer key in one engagement: the active claims that hold it (rule 11)."""

    engagement_id: str
    customer_key: str


class Guard(NamedTuple):
    """One partner's uniqueness guard on a counter: its one active claim there (rule 10)."""

    engagement_id: str
    customer_key: str
    partner_id: str


@dataclass(frozen=True, slots=True)
class WriteClaim:
    """The claim as it is after; only if the stored one is still at ``read_version`` (None: a new id)."""

    claim: Claim
    read_version: int | None


@dataclass(frozen=True, slots=True)
class CountHolder:
    """A new claim counted, and the overdue holders it expires dropped; only if the counter is still at
    ``read_version`` (0: no counter yet)."""

    counter: Counter
    holder: Holder
    read_version: int
    drop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReleaseHolder:
    """An ended claim no longer counted; only if the counter holds it."""

    counter: Counter
    claim_id: str


@dataclass(frozen=True, slots=True)
class MoveHolder:
    """A counted claim with its new deadline; only if the counter holds it."""

    counter: Counter
    holder: Holder


@dataclass(frozen=True, slots=True)
class PutGuard:
    """The partner's guard on the new claim; only if it is absent, or still ``replaces`` (an overdue claim)."""

    guard: Guard
    claim_id: str
    due: datetime | None
    replaces: str | None


@dataclass(frozen=True, slots=True)
class DeleteGuard:
    """The guard of a claim that ended, or that an add of another partner expired, removed; only if it is still
    that claim's (an add of the same partner replaces it instead: ``PutGuard.replaces``)."""

    guard: Guard
    claim_id: str


@dataclass(frozen=True, slots=True)
class CloseReferral:
    """Rule 25: the claim's referral closed with its final state; only if the referral exists."""

    referral_id: str
    state: ClaimState
    at: datetime


@dataclass(frozen=True, slots=True)
class PutReferral:
    """Rule 25: the referral a first consent request creates; rule 26: the same referral upgraded to co-sell
    when consent is granted."""

    referral: Referral


@dataclass(frozen=True, slots=True)
class DeleteToken:
    """Rule 15: a consent link that no longer opens anything: a resend rotated it (or a redelivery whose earlier
    email never went out, or went to another address), or it was used, or the claim ended."""

    token_hash: str


@dataclass(frozen=True, slots=True)
class PutToken:
    """A new consent link; only if its hash is not taken."""

    record: ConsentTokenRecord


@dataclass(frozen=True, slots=True)
class UpsertKnownCustomer:
    """Rule 16: every attribute set, the identifiers added to those stored."""

    known: KnownCustomer


Effect: TypeAlias = (
    WriteClaim
    | CountHolder
    | ReleaseHolder
    | MoveHolder
    | PutGuard
    | DeleteGuard
    | CloseReferral
    | PutReferral
    | DeleteToken
    | PutToken
    | UpsertKnownCustomer
)


def counter_of(claim: Claim) -> Counter:
    return Counter(claim.engagement_id, claim.customer_key)


def guard_of(claim: Claim) -> Guard:
    return Guard(claim.engagement_id, claim.customer_key, claim.partner_id)


def holder_of(claim: Claim) -> Holder:
    return Holder(claim.claim_id, claim.partner_id, claim.deadline)


def _closed_referral(ended: Claim) -> list[Effect]:
    """Rule 25: the referral of a claim that ended, closed in the same write."""
    return [CloseReferral(ended.referral_id, ended.state, ended.updated_at)] if ended.referral_id else []


def change_effects(change: ClaimChange) -> tuple[Effect, ...]:
    """Everything one change of one claim writes, in the order a transaction lists it."""
    before, after = change.before, change.after
    effects: list[Effect] = [WriteClaim(after, read_version=before.version)]
    if after.state.is_terminal and not before.state.is_terminal:
        effects += [ReleaseHolder(counter_of(after), after.claim_id), DeleteGuard(guard_of(after), after.claim_id)]
        effects += _closed_referral(after)
    elif after.deadline != before.deadline and not after.state.is_terminal:
        effects.append(MoveHolder(counter_of(after), holder_of(after)))
    if change.referral is not None:
        effects.append(PutReferral(change.referral))
    effects += [DeleteToken(gone) for gone in sorted(before.live_token_hashes - after.live_token_hashes)]
    if change.put_token is not None:
        effects.append(PutToken(change.put_token))
    if change.known_customer is not None:
        effects.append(UpsertKnownCustomer(change.known_customer))
    return tuple(effects)


def creation_effects(new: NewClaims) -> tuple[Effect, ...]:
    """Everything one add or claim request writes (rules 10, 11, 17): per new claim its count, guard and claim;
    per overdue claim its expiry, with the guard released unless a new claim of the same partner replaces it."""
    expiring = {c.claim_id for c in new.expire}
    replaced: set[str] = set()
    effects: list[Effect] = []
    for claim in new.claims:
        snapshot = new.snapshots[claim.engagement_id]
        drop = tuple(h.claim_id for h in snapshot.holders if h.claim_id in expiring)
        effects.append(CountHolder(counter_of(claim), holder_of(claim), snapshot.version, drop))
        stale = snapshot.partner_claim_id
        if stale is not None:
            replaced.add(stale)
        effects.append(PutGuard(guard_of(claim), claim.claim_id, claim.deadline, replaces=stale))
        effects.append(WriteClaim(claim, read_version=None))
    for expired in new.expire:
        effects.append(WriteClaim(expired, read_version=expired.version - 1))  # its count: dropped above
        effects += _closed_referral(expired)
        if expired.claim_id not in replaced:
            effects.append(DeleteGuard(guard_of(expired), expired.claim_id))
    return tuple(effects)
