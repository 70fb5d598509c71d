"""A claim write's effects, decided once by the domain (issue 13 item 4): every transition and every add.

The stores only translate these (the repository contract checks what they store); here each case lists its
effects exactly, so a dropped, added or reordered effect fails.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, get_args

import pytest

from mci.adapters.dynamodb_claims import DynamoDBClaimRepository
from mci.adapters.memory import MemoryClaimRepository
from mci.domain import ports
from mci.domain.claim_effects import (
    CloseReferral,
    Counter,
    CountHolder,
    DeleteGuard,
    DeleteToken,
    Effect,
    Guard,
    MoveHolder,
    PutGuard,
    PutReferral,
    PutToken,
    ReleaseHolder,
    UpsertKnownCustomer,
    WriteClaim,
    change_effects,
    creation_effects,
)
from mci.domain.claims import TRANSITIONS, Claim, ClaimState
from mci.domain.ports import ClaimChange, Holder, KnownCustomer, LimitSnapshot, NewClaims
from mci.domain.referrals import Referral, ReferralType, referral_for
from tests.support.claims import KEY, expired, new_claim
from tests.support.reference import CONTOSO, MIGRATE, NORTHWIND, NOW, demo_data

E1, E2 = "e-effects-one", "e-effects-two"
LATER = NOW + timedelta(days=31)  # every claim made at NOW is overdue
SUBMIT_BY = NOW + timedelta(days=90)
S = ClaimState

# Rule 18's moves by what they do to the items around the claim.
ENDS = {(start, to) for start, targets in TRANSITIONS.items() for to in targets if to.is_terminal}
MOVES_DEADLINE = {(S.CONSENT_REQUESTED, S.CONSENT_GRANTED): SUBMIT_BY, (S.CONSENT_GRANTED, S.SUBMITTED): None}
KEEPS_DEADLINE = {(S.PENDING_CONSENT, S.CONSENT_REQUESTED)}
EVERY_TRANSITION = sorted((start, to) for start, targets in TRANSITIONS.items() for to in targets)


def in_state(state: ClaimState, *, referral_id: str | None = None) -> Claim:
    """P1's claim in E1, moved to ``state`` the way the flow moves it."""
    claim = new_claim(CONTOSO, E1).model_copy(update={"referral_id": referral_id})
    path = {
        S.PENDING_CONSENT: [],
        S.CONSENT_REQUESTED: [S.CONSENT_REQUESTED],
        S.CONSENT_GRANTED: [S.CONSENT_REQUESTED, S.CONSENT_GRANTED],
        S.SUBMITTED: [S.CONSENT_REQUESTED, S.CONSENT_GRANTED, S.SUBMITTED],
    }[state]
    for to in path:
        extra = {"submission_deadline": SUBMIT_BY} if to is S.CONSENT_GRANTED else {}
        claim = claim.transition(to, at=NOW, actor="customer", **extra)
    return claim


def moved(claim: Claim, to: ClaimState) -> Claim:
    extra = {"submission_deadline": SUBMIT_BY} if to is S.CONSENT_GRANTED else {}
    return claim.transition(to, at=NOW + timedelta(hours=1), actor="partner:p/user:u", **extra)


def test_the_cases_below_cover_every_transition_of_rule_18() -> None:
    assert sorted(ENDS | set(MOVES_DEADLINE) | KEEPS_DEADLINE) == EVERY_TRANSITION
    assert not ENDS & (set(MOVES_DEADLINE) | KEEPS_DEADLINE)


@pytest.mark.parametrize("referral_id", [None, "r-effects"], ids=["no-referral", "referral"])
@pytest.mark.parametrize(("start", "to"), sorted(ENDS), ids=lambda s: s.value)
def test_a_claim_that_ends_releases_its_count_and_guard_and_closes_its_referral(
    start: ClaimState, to: ClaimState, referral_id: str | None
) -> None:
    before = in_state(start, referral_id=referral_id)
    after = moved(before, to)

    effects = change_effects(ClaimChange(before=before, after=after))

    expected: list[Effect] = [
        WriteClaim(after, read_version=before.version),
        ReleaseHolder(Counter(E1, KEY), before.claim_id),
        DeleteGuard(Guard(E1, KEY, CONTOSO), before.claim_id),
    ]
    if referral_id is not None:
        expected.append(CloseReferral(referral_id, to, after.updated_at))
    assert effects == tuple(expected)


@pytest.mark.parametrize(("start", "to"), sorted(MOVES_DEADLINE), ids=lambda s: s.value)
def test_a_new_deadline_moves_the_counted_holder(start: ClaimState, to: ClaimState) -> None:
    before = in_state(start, referral_id="r-effects")
    after = moved(before, to)

    effects = change_effects(ClaimChange(before=before, after=after))

    holder = Holder(before.claim_id, CONTOSO, MOVES_DEADLINE[(start, to)])
    assert effects == (WriteClaim(after, read_version=before.version), MoveHolder(Counter(E1, KEY), holder))


@pytest.mark.parametrize(("start", "to"), sorted(KEEPS_DEADLINE), ids=lambda s: s.value)
def test_a_move_that_keeps_the_deadline_writes_only_the_claim(start: ClaimState, to: ClaimState) -> None:
    before = in_state(start, referral_id="r-effects")
    after = moved(before, to)

    assert change_effects(ClaimChange(before=before, after=after)) == (WriteClaim(after, before.version),)


def test_a_change_without_a_move_writes_only_the_claim() -> None:
    before = in_state(S.CONSENT_REQUESTED, referral_id="r-effects")
    after = before.model_copy(update={"version": before.version + 1, "pending_reminders": []})

    assert change_effects(ClaimChange(before=before, after=after)) == (WriteClaim(after, before.version),)


def token(token_hash: str, claim: Claim) -> ports.ConsentTokenRecord:
    page = ports.ConsentPageContext("es", "Contoso", "Azure Migrate", "Fabrikam", 90)
    return ports.ConsentTokenRecord(token_hash, claim.claim_id, CONTOSO, claim.consent_deadline, page)


def test_a_resend_rotates_the_consent_token() -> None:
    before = in_state(S.CONSENT_REQUESTED).model_copy(update={"consent_token_hash": "old-hash"})
    after = before.model_copy(update={"version": before.version + 1, "consent_token_hash": "new-hash"})
    new = token("new-hash", after)

    effects = change_effects(ClaimChange(before=before, after=after, put_token=new))

    assert effects == (WriteClaim(after, before.version), DeleteToken("old-hash"), PutToken(new))


def test_a_claim_that_ends_with_a_token_deletes_it_after_its_other_effects() -> None:
    before = in_state(S.CONSENT_REQUESTED, referral_id="r-effects").model_copy(update={"consent_token_hash": "used"})
    after = before.transition(S.CONSENT_DECLINED, at=NOW, actor="customer", consent_token_hash=None)

    effects = change_effects(ClaimChange(before=before, after=after))

    assert effects == (
        WriteClaim(after, before.version),
        ReleaseHolder(Counter(E1, KEY), before.claim_id),
        DeleteGuard(Guard(E1, KEY, CONTOSO), before.claim_id),
        CloseReferral("r-effects", S.CONSENT_DECLINED, NOW),
        DeleteToken("used"),
    )


def referral_of(claim: Claim) -> Referral:
    """The claim's referral as consent granted upgrades it (rules 25, 26)."""
    migrate = next(e for e in demo_data().engagements if e.engagement_id == MIGRATE)
    referral = referral_for(claim, migrate, Decimal(25000), "r-effects", NOW)
    assert referral is not None
    return referral.model_copy(update={"type": ReferralType.CO_SELL})


def known_of(claim: Claim) -> KnownCustomer:
    return KnownCustomer(
        partner_id=CONTOSO,
        customer_id=KEY,
        identifier_type="tenant_id",
        identifier_value="t",
        name="Fabrikam",
        customer_contact={},
        partner_contact={},
        last_claim_id=claim.claim_id,
        known_since=NOW,
        updated_at=NOW,
        identifiers=(KEY,),
    )


def test_consent_granted_writes_the_upgraded_referral_and_the_known_customer() -> None:
    before = in_state(S.CONSENT_REQUESTED, referral_id="r-effects").model_copy(update={"consent_token_hash": "used"})
    after = moved(before, S.CONSENT_GRANTED).model_copy(update={"consent_token_hash": None})
    referral, known = referral_of(after), known_of(after)

    effects = change_effects(ClaimChange(before=before, after=after, known_customer=known, referral=referral))

    assert effects == (
        WriteClaim(after, before.version),
        MoveHolder(Counter(E1, KEY), Holder(after.claim_id, CONTOSO, SUBMIT_BY)),
        PutReferral(referral),
        DeleteToken("used"),
        UpsertKnownCustomer(known),
    )


def overdue_add() -> NewClaims:
    """P1 adds in E1 and E2 at LATER: in E1 its own overdue claim (with a referral) and P2's are expired."""
    mine = new_claim(CONTOSO, E1).model_copy(update={"referral_id": "r-effects"})
    theirs = new_claim(NORTHWIND, E1)
    holders = (Holder(mine.claim_id, CONTOSO, mine.deadline), Holder(theirs.claim_id, NORTHWIND, theirs.deadline))
    snapshots = {
        E1: LimitSnapshot(E1, KEY, version=2, holders=holders, partner_claim_id=mine.claim_id),
        E2: LimitSnapshot(E2, KEY),
    }
    claims = [new_claim(CONTOSO, E1, at=LATER), new_claim(CONTOSO, E2, at=LATER)]
    return NewClaims(claims=claims, snapshots=snapshots, expire=[expired(mine), expired(theirs)])


def test_an_add_counts_guards_and_writes_each_claim_and_expires_the_overdue_ones() -> None:
    new = overdue_add()
    first, second = new.claims
    mine, theirs = new.expire

    effects = creation_effects(new)

    assert effects == (
        CountHolder(
            Counter(E1, KEY), Holder(first.claim_id, CONTOSO, first.deadline), 2, (mine.claim_id, theirs.claim_id)
        ),
        PutGuard(Guard(E1, KEY, CONTOSO), first.claim_id, first.deadline, replaces=mine.claim_id),
        WriteClaim(first, read_version=None),
        CountHolder(Counter(E2, KEY), Holder(second.claim_id, CONTOSO, second.deadline), 0),
        PutGuard(Guard(E2, KEY, CONTOSO), second.claim_id, second.deadline, replaces=None),
        WriteClaim(second, read_version=None),
        WriteClaim(mine, read_version=mine.version - 1),
        CloseReferral("r-effects", S.EXPIRED, mine.updated_at),  # its guard: replaced by the new claim's
        WriteClaim(theirs, read_version=theirs.version - 1),
        DeleteGuard(Guard(E1, KEY, NORTHWIND), theirs.claim_id),
    )


def every_case() -> list[tuple[Effect, ...]]:
    granted = in_state(S.CONSENT_REQUESTED, referral_id="r").model_copy(update={"consent_token_hash": "h"})
    after = moved(granted, S.CONSENT_GRANTED)
    resent = granted.model_copy(update={"version": granted.version + 1, "consent_token_hash": "h2"})
    return [
        creation_effects(overdue_add()),
        change_effects(
            ClaimChange(before=granted, after=after, known_customer=known_of(after), referral=referral_of(after))
        ),
        change_effects(ClaimChange(before=granted, after=resent, put_token=token("h2", resent))),
        *(
            change_effects(
                ClaimChange(before=in_state(s, referral_id="r"), after=moved(in_state(s, referral_id="r"), t))
            )
            for s, t in EVERY_TRANSITION
        ),
    ]


def test_every_kind_of_effect_is_decided_by_some_case() -> None:
    decided = {type(effect) for effects in every_case() for effect in effects}
    assert decided == set(get_args(Effect))


class RecordingClient:
    def __init__(self) -> None:
        self.transactions: list[list[dict[str, Any]]] = []

    def transact_write_items(self, **request: Any) -> dict[str, Any]:
        self.transactions.append(request["TransactItems"])
        return {}


def test_dynamodb_writes_one_transaction_item_per_effect_in_order() -> None:
    client = RecordingClient()
    repository = DynamoDBClaimRepository(client, "t")  # type: ignore[arg-type]
    new = overdue_add()
    before = in_state(S.CONSENT_GRANTED, referral_id="r-effects")
    change = ClaimChange(before=before, after=moved(before, S.CANCELLED))

    repository.create(new)
    repository.apply(change)

    kinds = {"WriteClaim": "Put", "CountHolder": "Update", "ReleaseHolder": "Update", "MoveHolder": "Update"}
    kinds |= {"PutGuard": "Put", "DeleteGuard": "Delete", "CloseReferral": "Update"}
    for effects, items in zip((creation_effects(new), change_effects(change)), client.transactions, strict=True):
        assert [next(iter(item)) for item in items] == [kinds[type(e).__name__] for e in effects]


def test_the_memory_fake_writes_every_effect_or_none() -> None:
    repository = MemoryClaimRepository()
    claim = new_claim(CONTOSO, E1)
    repository.create(NewClaims(claims=[claim], snapshots={E1: LimitSnapshot(E1, KEY)}))
    cancelled = moved(claim, S.CANCELLED).model_copy(update={"referral_id": "r-missing"})

    with pytest.raises(ports.ConcurrentChange, match="no such referral"):  # the last effect's condition fails
        repository.apply(ClaimChange(before=claim, after=cancelled))

    assert repository.get_claim(claim.claim_id) == claim
    assert repository.active_count(E1, KEY) == 1
    assert repository.guards == {(E1, KEY, CONTOSO): claim.claim_id}
