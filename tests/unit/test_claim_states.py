"""Rule 18 (and the exact expiry of rule 17): the claim state machine."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from mci.domain.claims import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Claim,
    ClaimState,
    HistoryEntry,
    consent_deadline_for,
)
from mci.domain.errors import Conflict
from tests.support.reference import NOW

S = ClaimState

# Rule 18 and rule 19, written out independently of the production table.
ALLOWED = {
    (S.PENDING_CONSENT, S.CONSENT_REQUESTED),
    (S.PENDING_CONSENT, S.CANCELLED),
    (S.PENDING_CONSENT, S.EXPIRED),
    (S.CONSENT_REQUESTED, S.CONSENT_GRANTED),
    (S.CONSENT_REQUESTED, S.CONSENT_DECLINED),
    (S.CONSENT_REQUESTED, S.CANCELLED),
    (S.CONSENT_REQUESTED, S.EXPIRED),
    (S.CONSENT_GRANTED, S.SUBMITTED),
    (S.CONSENT_GRANTED, S.CANCELLED),
    (S.CONSENT_GRANTED, S.EXPIRED),
    (S.SUBMITTED, S.COMPLETED),
    (S.SUBMITTED, S.REJECTED),
}
ALL_PAIRS = list(itertools.product(ClaimState, ClaimState))
CONSENT_DEADLINE = NOW + timedelta(days=30)
SUBMISSION_DEADLINE = NOW + timedelta(days=60)


def claim(state: ClaimState = S.PENDING_CONSENT, **overrides: Any) -> Claim:
    data: dict[str, Any] = {
        "claim_id": "claim-1",
        "partner_id": "p-contoso-partners",
        "location_id": "1234567",
        "engagement_id": "e-azure-migrate",
        "friendly_name": "Fabrikam",
        "identifier": {"type": "domain", "value": "fabrikam.com", "resolved_tenant_id": "t"},
        "customer_key": "tenant_id:t",
        "origin": "added",
        "state": state,
        "customer_contact": {"name": "Ana", "email": "ana@fabrikam.com"},
        "partner_contact": {"name": "Sam", "email": "sam@contoso.com"},
        "consent_deadline": CONSENT_DEADLINE,
        "submission_deadline": SUBMISSION_DEADLINE if state is S.CONSENT_GRANTED else None,
        "created_at": NOW,
        "updated_at": NOW,
        "history": [{"at": NOW, "actor": "partner:p/user:u", "from": None, "to": "pending_consent"}],
    }
    data.update(overrides)
    return Claim.model_validate(data)


def test_the_table_is_exactly_rule_18() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == ALLOWED
    assert set(TRANSITIONS) == set(ClaimState)


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_every_pair_of_states(source: ClaimState, target: ClaimState) -> None:
    before = claim(source)
    at = NOW + timedelta(hours=1)
    if (source, target) in ALLOWED:
        after = before.transition(target, at=at, actor="ops:reviewer", reason="because")
        assert after.state is target
        assert after.history[-1] == HistoryEntry(at=at, actor="ops:reviewer", from_=source, to=target, reason="because")
    else:
        with pytest.raises(Conflict) as raised:
            before.transition(target, at=at, actor="ops:reviewer")
        assert raised.value.status == 409
        assert raised.value.code == "invalid_state"
        assert raised.value.extra == {"state": source.value}
        assert before.state is source


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_terminal_states_have_no_way_out(state: ClaimState) -> None:
    assert TRANSITIONS[state] == frozenset()
    assert state.is_terminal
    assert state not in ACTIVE_STATES


def test_terminal_and_active_states() -> None:
    assert {s.value for s in TERMINAL_STATES} == {"completed", "rejected", "cancelled", "expired", "consent_declined"}
    assert {s.value for s in ACTIVE_STATES} == {"pending_consent", "consent_requested", "consent_granted", "submitted"}
    assert not any(s.is_terminal for s in ACTIVE_STATES)


def test_a_transition_appends_to_history_and_leaves_the_original_alone() -> None:
    before = claim()
    at = NOW + timedelta(minutes=5)
    after = before.transition(S.CONSENT_REQUESTED, at=at, actor="partner:p/user:u", deal_size_usd=20000)
    assert len(after.history) == 2
    assert after.history[0] == before.history[0]
    assert after.history[1].from_ is S.PENDING_CONSENT
    assert after.history[1].to is S.CONSENT_REQUESTED
    assert after.history[1].reason is None
    assert after.updated_at == at
    assert after.version == before.version + 1
    assert after.deal_size_usd == 20000
    assert (before.state, len(before.history), before.version) == (S.PENDING_CONSENT, 1, 1)


def test_history_serialises_from_with_its_contract_name() -> None:
    from mci.http.schemas import ClaimView

    after = claim().transition(S.CANCELLED, at=NOW, actor="a", reason="no longer needed", request_id="req-9")
    entry = ClaimView.of(after).model_dump(mode="json", by_alias=True)["history"][-1]
    assert entry == {
        "at": "2026-11-27T10:00:00Z",
        "actor": "a",
        "from": "pending_consent",
        "to": "cancelled",
        "reason": "no longer needed",
        "request_id": "req-9",
    }
    # As stored: the same, and the correlation id of the request that made it (issue 15), for operators only.
    stored = after.model_dump(mode="json", by_alias=True)["history"][-1]
    assert stored == {**entry, "correlation_id": "req-9"}


def test_a_full_lifecycle_keeps_every_step() -> None:
    current = claim()
    for step, target in enumerate([S.CONSENT_REQUESTED, S.CONSENT_GRANTED, S.SUBMITTED, S.COMPLETED], start=1):
        current = current.transition(target, at=NOW + timedelta(days=step), actor=f"actor-{step}")
    assert [(h.from_, h.to) for h in current.history] == [
        (None, S.PENDING_CONSENT),
        (S.PENDING_CONSENT, S.CONSENT_REQUESTED),
        (S.CONSENT_REQUESTED, S.CONSENT_GRANTED),
        (S.CONSENT_GRANTED, S.SUBMITTED),
        (S.SUBMITTED, S.COMPLETED),
    ]
    assert current.version == 5
    with pytest.raises(Conflict):
        current.transition(S.CANCELLED, at=NOW + timedelta(days=9), actor="late")


# --- rule 17: exact expiry --------------------------------------------------------------------------


def test_consent_deadline_is_creation_plus_window() -> None:
    assert consent_deadline_for(NOW, 30) == NOW + timedelta(days=30)
    assert consent_deadline_for(NOW, 1) == NOW + timedelta(days=1)


@pytest.mark.parametrize("state", [S.PENDING_CONSENT, S.CONSENT_REQUESTED])
def test_awaiting_consent_expires_exactly_at_the_consent_deadline(state: ClaimState) -> None:
    pending = claim(state)
    assert pending.deadline == CONSENT_DEADLINE
    assert pending.effective_state(CONSENT_DEADLINE - timedelta(microseconds=1)) is state
    assert pending.effective_state(CONSENT_DEADLINE) is S.EXPIRED
    assert pending.effective_state(CONSENT_DEADLINE + timedelta(days=400)) is S.EXPIRED


def test_consented_claims_expire_at_the_submission_deadline_not_the_consent_one() -> None:
    granted = claim(S.CONSENT_GRANTED)
    assert granted.deadline == SUBMISSION_DEADLINE
    assert granted.effective_state(CONSENT_DEADLINE + timedelta(days=1)) is S.CONSENT_GRANTED
    assert granted.effective_state(SUBMISSION_DEADLINE - timedelta(microseconds=1)) is S.CONSENT_GRANTED
    assert granted.effective_state(SUBMISSION_DEADLINE) is S.EXPIRED


@pytest.mark.parametrize("state", [S.SUBMITTED, *sorted(TERMINAL_STATES)])
def test_submitted_and_terminal_claims_never_expire(state: ClaimState) -> None:
    later = NOW + timedelta(days=10_000)
    assert claim(state).deadline is None
    assert claim(state).effective_state(later) is state
    assert claim(state).as_seen_at(later) == claim(state)


def test_as_seen_at_expires_in_place_at_the_deadline() -> None:
    pending = claim()
    assert pending.as_seen_at(CONSENT_DEADLINE - timedelta(seconds=1)) is pending
    seen = pending.as_seen_at(CONSENT_DEADLINE + timedelta(days=3))
    assert seen.state is S.EXPIRED
    assert seen.history[-1] == HistoryEntry(
        at=CONSENT_DEADLINE, actor="system", from_=S.PENDING_CONSENT, to=S.EXPIRED, reason="consent deadline passed"
    )
    assert seen.updated_at == CONSENT_DEADLINE
    assert seen.version == pending.version  # a read writes nothing, so the stored version still holds
    assert pending.state is S.PENDING_CONSENT
