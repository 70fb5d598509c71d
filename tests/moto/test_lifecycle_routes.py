"""Submit, cancel and review through the real handlers on moto (rules 17-20), with exact expiry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.api import Answer, Caller
from tests.support.claims import KEY, DynamoDBStoreView
from tests.support.consent import FIRST_REQUEST, northwind_body, sent_messages, stored_claim, stored_item
from tests.support.lifecycle import LifecycleApi, TableSnapshot, assert_all_counters_match, lifecycle_api
from tests.support.reference import CONTOSO, MIGRATE, NORTHWIND, SECURITY, add_customer_body

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

UNKNOWN_CLAIM = "7d4c1b2a-0000-4000-8000-000000000000"
DAY = timedelta(days=1)


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> LifecycleApi:
    return lifecycle_api(lambda_context)


@pytest.fixture
def northwind(lambda_context: Any) -> Caller:
    return Caller(NORTHWIND, ["incentives_user"], lambda_context)


@pytest.fixture(autouse=True)
def counters_match_claims(dynamodb: DynamoDBClient) -> Iterator[None]:
    """Rule 11 after every test: each stored counter equals the stored active claims it counts."""
    yield
    assert_all_counters_match(TableSnapshot(dynamodb))


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    assert (answer.body["status"], answer.body["code"]) == (status, code), answer.body


def entry(history_entry: dict[str, Any]) -> dict[str, Any]:
    """The five fields rule 20 asks of every history entry."""
    return {name: history_entry[name] for name in ("at", "actor", "from", "to", "reason")}


def security_body(**overrides: Any) -> dict[str, Any]:
    return add_customer_body(engagement_ids=[SECURITY], **overrides)


# Each way a claim of Contoso gets to a state, through the real flows (and the sweep for a stored expiry).
Make = Callable[[LifecycleApi, "FixedClock"], str]


def _pending(api: LifecycleApi, clock: FixedClock) -> str:
    return api.add_claim()


def _requested(api: LifecycleApi, clock: FixedClock) -> str:
    claim_id = api.add_claim()
    api.requested(claim_id)
    return claim_id


def _granted(api: LifecycleApi, clock: FixedClock) -> str:
    return api.granted()


def _submitted(api: LifecycleApi, clock: FixedClock) -> str:
    return api.submitted()


def _completed(api: LifecycleApi, clock: FixedClock) -> str:
    return api.reviewed("complete")


def _rejected(api: LifecycleApi, clock: FixedClock) -> str:
    return api.reviewed("reject")


def _cancelled(api: LifecycleApi, clock: FixedClock) -> str:
    claim_id = api.add_claim()
    assert api.cancel(claim_id).status == 200
    return claim_id


def _declined(api: LifecycleApi, clock: FixedClock) -> str:
    return api.declined()


def _expired_by_sweep(api: LifecycleApi, clock: FixedClock) -> str:
    claim_id = _requested(api, clock)
    clock.advance(timedelta(days=30))
    assert api.sweep()["expired"] == 1
    return claim_id


def _lapsed_pending(api: LifecycleApi, clock: FixedClock) -> str:
    """Past its consent deadline, not yet swept: stored as pending, expired on every read and write."""
    claim_id = api.add_claim()
    clock.advance(timedelta(days=30))
    return claim_id


def _lapsed_requested(api: LifecycleApi, clock: FixedClock) -> str:
    claim_id = _requested(api, clock)
    clock.advance(timedelta(days=30))
    return claim_id


def _lapsed_granted(api: LifecycleApi, clock: FixedClock) -> str:
    """Past its submission deadline (90 days after consent), not yet swept."""
    claim_id = api.granted()
    clock.advance(timedelta(days=90))
    return claim_id


STATES: dict[str, Make] = {
    "pending_consent": _pending,
    "consent_requested": _requested,
    "consent_granted": _granted,
    "submitted": _submitted,
    "completed": _completed,
    "rejected": _rejected,
    "cancelled": _cancelled,
    "consent_declined": _declined,
    "expired": _expired_by_sweep,
    "lapsed_pending": _lapsed_pending,
    "lapsed_requested": _lapsed_requested,
    "lapsed_granted": _lapsed_granted,
}
TERMINAL = ["completed", "rejected", "cancelled", "consent_declined", "expired", "lapsed_pending", "lapsed_granted"]


# ---------------------------------------------------------------- submit (rule 19)


def test_submit_moves_a_consented_claim_to_submitted(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    claim_id = api.granted()
    granted = api.claim(claim_id)
    clock.advance(DAY)
    answer = api.submit(claim_id, {"notes": "workshop delivered"})
    assert answer.status == 200, answer.body
    claim = answer.body
    assert claim["state"] == "submitted"
    assert claim["history"][:-1] == granted["history"]
    assert entry(claim["history"][-1]) == {
        "at": "2026-11-28T10:00:00Z",
        "actor": f"partner:{CONTOSO}/user:user-1",
        "from": "consent_granted",
        "to": "submitted",
        "reason": "submitted",
    }
    assert api.claim(claim_id) == claim
    assert stored_claim(dynamodb, claim_id)["submission_notes"] == {"S": "workshop delivered"}


@pytest.mark.parametrize(
    "state",
    [s for s in STATES if s not in ("consent_granted", "lapsed_granted")],
)
def test_submit_in_any_other_state_is_refused(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient, state: str
) -> None:
    claim_id = STATES[state](api, clock)
    before = stored_claim(dynamodb, claim_id)
    answer = api.submit(claim_id)
    assert_problem(answer, 409, "invalid_state")
    shown = api.claim(claim_id)["state"]
    assert answer.body["state"] == shown == ("expired" if state.startswith("lapsed_") else state)
    assert stored_claim(dynamodb, claim_id) == before


def test_submit_after_the_submission_deadline_is_gone(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    on_time = api.granted()
    late = api.granted(security_body())
    deadline = api.claim(late)["submission_deadline"]
    assert deadline == "2027-02-25T10:00:00Z"
    clock.advance(timedelta(days=90) - timedelta(microseconds=1))
    assert api.submit(on_time).status == 200
    clock.advance(timedelta(microseconds=1))
    before = stored_claim(dynamodb, late)
    answer = api.submit(late)
    assert_problem(answer, 410, "deadline_passed")
    assert deadline.removesuffix("Z") in answer.body["detail"].replace(".000000", "")
    assert stored_claim(dynamodb, late) == before
    assert api.claim(late)["state"] == "expired"
    assert api.claim(on_time)["state"] == "submitted"  # submitted claims have no deadline left


# ---------------------------------------------------------------- cancel (rule 19)


@pytest.mark.parametrize("state", ["pending_consent", "consent_requested", "consent_granted"])
def test_cancel_ends_an_active_claim_that_is_not_submitted(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient, state: str
) -> None:
    claim_id = STATES[state](api, clock)
    view = DynamoDBStoreView(dynamodb, "ClaimsTable")
    assert view.counter(MIGRATE, KEY).active_count == 1  # type: ignore[union-attr]
    before = api.claim(claim_id)
    clock.advance(timedelta(hours=5))
    answer = api.cancel(claim_id, "  budget moved to next year  ")
    assert answer.status == 200, answer.body
    claim = answer.body
    assert claim["state"] == "cancelled"
    assert claim["history"][:-1] == before["history"]
    assert entry(claim["history"][-1]) == {
        "at": "2026-11-27T15:00:00Z",
        "actor": f"partner:{CONTOSO}/user:user-1",
        "from": state,
        "to": "cancelled",
        "reason": "budget moved to next year",
    }
    assert api.claim(claim_id) == claim
    assert view.counter(MIGRATE, KEY).active_count == 0  # type: ignore[union-attr]
    assert view.guard(MIGRATE, KEY, CONTOSO) is None


def test_cancelling_a_requested_claim_kills_the_consent_link(api: LifecycleApi, dynamodb: DynamoDBClient) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    assert api.page(token).status == 200
    digest = stored_claim(dynamodb, claim_id)["consent_token_hash"]["S"]
    assert api.cancel(claim_id).status == 200
    neutral = api.page("Q" * 43)
    for answer in (api.page(token), api.decide(token, "accept")):
        assert (answer.status, answer.body) == (neutral.status, neutral.body)
        assert answer.status in (404, 410)
    assert stored_item(dynamodb, f"TOKEN#{digest}", "TOKEN") is None
    assert "consent_token_hash" not in stored_claim(dynamodb, claim_id)
    assert api.claim(claim_id)["state"] == "cancelled"
    assert api.known_customers().body["items"] == []
    assert len(sent_messages()) == 1  # the request only: no decision notice


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": 7}])
def test_cancel_needs_a_reason(api: LifecycleApi, dynamodb: DynamoDBClient, body: dict[str, Any]) -> None:
    claim_id = api.add_claim()
    before = stored_claim(dynamodb, claim_id)
    answer = api.cancel(claim_id, body=body)
    assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["reason"]
    assert stored_claim(dynamodb, claim_id) == before


@pytest.mark.parametrize("state", ["submitted", *TERMINAL, "lapsed_requested"])
def test_cancel_a_submitted_or_ended_claim_is_refused(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient, state: str
) -> None:
    claim_id = STATES[state](api, clock)
    before = stored_claim(dynamodb, claim_id)
    shown = api.claim(claim_id)
    answer = api.cancel(claim_id)
    assert_problem(answer, 409, "invalid_state")
    assert answer.body["state"] == shown["state"]
    assert stored_claim(dynamodb, claim_id) == before
    assert api.claim(claim_id) == shown


# ---------------------------------------------------------------- review (rule 19)


@pytest.mark.parametrize(("decision", "state"), [("complete", "completed"), ("reject", "rejected")])
def test_operations_complete_or_reject_a_submitted_claim(
    api: LifecycleApi, clock: FixedClock, decision: str, state: str
) -> None:
    claim_id = api.submitted()
    before = api.claim(claim_id)
    clock.advance(2 * DAY)
    answer = api.review(claim_id, decision, "evidence checked")
    assert answer.status == 200, answer.body
    assert answer.body["state"] == state
    assert answer.body["history"][:-1] == before["history"]
    assert entry(answer.body["history"][-1]) == {
        "at": "2026-11-29T10:00:00Z",
        "actor": "operations:user-1",
        "from": "submitted",
        "to": state,
        "reason": "evidence checked",
    }
    assert api.claim(claim_id) == answer.body


@pytest.mark.parametrize("roles", [["incentives_user"], ["incentives_admin"], ["referral_admin"], []])
def test_only_operations_review(
    api: LifecycleApi, dynamodb: DynamoDBClient, lambda_context: Any, roles: list[str]
) -> None:
    claim_id = api.submitted()
    before = stored_claim(dynamodb, claim_id)
    for partner_id in (CONTOSO, NORTHWIND):
        answer = api.review(claim_id, caller=Caller(partner_id, roles, lambda_context))
        assert_problem(answer, 403, "forbidden")
    assert stored_claim(dynamodb, claim_id) == before


def test_reviewing_an_unknown_claim_is_not_found(api: LifecycleApi) -> None:
    for claim_id in (UNKNOWN_CLAIM, "x" * 200):
        assert_problem(api.review(claim_id), 404, "not_found")


@pytest.mark.parametrize(
    "state", ["pending_consent", "consent_requested", "consent_granted", *TERMINAL, "lapsed_requested"]
)
def test_only_submitted_claims_are_reviewed(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient, state: str
) -> None:
    claim_id = STATES[state](api, clock)
    before = stored_claim(dynamodb, claim_id)
    for decision in ("complete", "reject"):
        assert_problem(api.review(claim_id, decision), 409, "invalid_state")
    assert stored_claim(dynamodb, claim_id) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "complete"}, "reason"),
        ({"decision": "complete", "reason": ""}, "reason"),
        ({"decision": "reject", "reason": "  "}, "reason"),
        ({"reason": "fine"}, "decision"),
        ({"decision": "approve", "reason": "fine"}, "decision"),
        ({"decision": "complete", "reason": "fine", "state": "completed"}, "state"),
    ],
)
def test_a_review_needs_a_decision_and_a_reason(
    api: LifecycleApi, dynamodb: DynamoDBClient, body: dict[str, Any], field: str
) -> None:
    claim_id = api.submitted()
    before = stored_claim(dynamodb, claim_id)
    answer = api.review(claim_id, body=body)
    assert_problem(answer, 422, "validation_error")
    assert field in [e["field"] for e in answer.body["errors"]]
    assert stored_claim(dynamodb, claim_id) == before


# ---------------------------------------------------------------- history (rule 20)


def test_every_transition_lands_in_the_history_which_only_grows(api: LifecycleApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    seen = [api.claim(claim_id)["history"]]

    def step(action: Callable[[], Any]) -> None:
        clock.advance(timedelta(hours=3))
        action()
        history = api.claim(claim_id)["history"]
        assert history[: len(seen[-1])] == seen[-1]
        assert len(history) == len(seen[-1]) + 1
        seen.append(history)

    token: list[str] = []
    step(lambda: token.append(api.requested(claim_id)))
    step(lambda: api.decide(token[0], "accept"))
    step(lambda: api.submit(claim_id))
    step(lambda: api.review(claim_id, "complete", "paid"))
    history = seen[-1]
    assert [(h["from"], h["to"]) for h in history] == [
        (None, "pending_consent"),
        ("pending_consent", "consent_requested"),
        ("consent_requested", "consent_granted"),
        ("consent_granted", "submitted"),
        ("submitted", "completed"),
    ]
    assert [h["at"] for h in history] == [
        "2026-11-27T10:00:00Z",
        "2026-11-27T13:00:00Z",
        "2026-11-27T16:00:00Z",
        "2026-11-27T19:00:00Z",
        "2026-11-27T22:00:00Z",
    ]
    actors = [h["actor"] for h in history]
    assert actors[0] == actors[3] == f"partner:{CONTOSO}/user:user-1"
    assert actors[1].startswith(f"partner:{CONTOSO}")
    assert actors[2:] == ["customer", f"partner:{CONTOSO}/user:user-1", "operations:user-1"]
    assert [h["reason"] for h in history] == ["added", "consent requested", "consent accepted", "submitted", "paid"]
    # refused actions add nothing
    api.cancel(claim_id)
    api.submit(claim_id)
    assert api.claim(claim_id)["history"] == history


# ---------------------------------------------------------------- terminal claims never change (rule 18)


@pytest.mark.parametrize("state", TERMINAL)
def test_an_ended_claim_refuses_every_action(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient, state: str
) -> None:
    claim_id = STATES[state](api, clock)
    before = stored_claim(dynamodb, claim_id)
    shown = api.claim(claim_id)
    answers = {
        "submit": api.submit(claim_id),
        "cancel": api.cancel(claim_id),
        "complete": api.review(claim_id, "complete"),
        "reject": api.review(claim_id, "reject"),
        "consent": api.request(claim_id, FIRST_REQUEST),
        "resend": api.request(claim_id, {}),
    }
    for action, answer in answers.items():
        assert answer.status in (409, 410), (action, answer.body)
        assert answer.headers["content-type"] == "application/problem+json"
    assert stored_claim(dynamodb, claim_id) == before
    assert api.claim(claim_id) == shown


# ---------------------------------------------------------------- the counter (rules 11, 18)


@pytest.mark.parametrize(
    "ending",
    ["cancel_pending", "cancel_requested", "cancel_granted", "complete", "reject", "decline"],
)
def test_the_customer_is_released_exactly_when_the_claim_ends(
    api: LifecycleApi, northwind: Caller, dynamodb: DynamoDBClient, ending: str
) -> None:
    """Security workshop allows one active claim per customer: Northwind gets in only once Contoso's ends."""
    view = DynamoDBStoreView(dynamodb, "ClaimsTable")

    def northwind_is_refused() -> None:
        answer = api.add(northwind_body(engagement_ids=[SECURITY]), caller=northwind)
        assert_problem(answer, 409, "active_claim_limit_reached")
        counter = view.counter(SECURITY, KEY)
        assert counter is not None
        assert counter.active_count == 1

    claim_id = api.add_claim(security_body())
    northwind_is_refused()
    if ending == "cancel_pending":
        assert api.cancel(claim_id).status == 200
    else:
        token = api.requested(claim_id)
        northwind_is_refused()
        if ending == "cancel_requested":
            assert api.cancel(claim_id).status == 200
        elif ending == "decline":
            assert api.decide(token, "decline").status == 200
        else:
            assert api.decide(token, "accept").status == 200
            northwind_is_refused()
            if ending == "cancel_granted":
                assert api.cancel(claim_id).status == 200
            else:
                assert api.submit(claim_id).status == 200
                northwind_is_refused()
                assert api.review(claim_id, ending).status == 200
    assert view.counter(SECURITY, KEY).active_count == 0  # type: ignore[union-attr]
    assert view.guard(SECURITY, KEY, CONTOSO) is None
    answer = api.add(northwind_body(engagement_ids=[SECURITY]), caller=northwind)
    assert answer.status == 201, answer.body
    assert view.counter(SECURITY, KEY).holders == {answer.body["claims"][0]["claim_id"]}  # type: ignore[union-attr]


# ---------------------------------------------------------------- another partner's claim (§1)


@pytest.mark.parametrize("state", ["pending_consent", "consent_requested", "consent_granted", "submitted"])
def test_another_partners_claim_is_not_found_on_every_action(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient, northwind: Caller, state: str
) -> None:
    claim_id = STATES[state](api, clock)
    before = stored_claim(dynamodb, claim_id)

    def every_action(target: str) -> list[Answer]:
        return [
            api.submit(target, caller=northwind),
            api.cancel(target, caller=northwind),
            api.request(target, FIRST_REQUEST, caller=northwind),
            api.request(target, {}, caller=northwind),
            api.get_claim(target, caller=northwind),
        ]

    for theirs, unknown in zip(every_action(claim_id), every_action(UNKNOWN_CLAIM), strict=True):
        assert_problem(theirs, 404, "not_found")
        assert theirs.body == unknown.body
        assert theirs.headers == unknown.headers
        assert claim_id not in str(theirs.raw)
    assert stored_claim(dynamodb, claim_id) == before


# ---------------------------------------------------------------- exact expiry (rule 17)


def test_a_lapsed_claim_reads_and_writes_as_expired_before_any_sweep(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    pending = api.add_claim()
    requested = api.add_claim(security_body())
    api.requested(requested)
    clock.advance(timedelta(days=30) - timedelta(microseconds=1))
    assert api.claim(pending)["state"] == "pending_consent"
    clock.advance(timedelta(microseconds=1))
    stored = {c: stored_claim(dynamodb, c) for c in (pending, requested)}
    for claim_id in (pending, requested):
        shown = api.claim(claim_id)
        assert shown["state"] == "expired"
        assert shown["history"][-1]["at"] == "2026-12-27T10:00:00Z"
        assert_problem(api.submit(claim_id), 409, "invalid_state")
        assert_problem(api.cancel(claim_id), 409, "invalid_state")
        assert api.request(claim_id, FIRST_REQUEST).status in (409, 410)
        assert api.request(claim_id, {}).status in (409, 410)
    assert {c: stored_claim(dynamodb, c) for c in (pending, requested)} == stored
    assert stored[pending]["state"] == {"S": "pending_consent"}


def test_a_lapsed_consented_claim_can_be_neither_submitted_nor_cancelled(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    claim_id = _lapsed_granted(api, clock)
    before = stored_claim(dynamodb, claim_id)
    assert_problem(api.submit(claim_id), 410, "deadline_passed")
    assert_problem(api.cancel(claim_id), 409, "invalid_state")
    assert api.claim(claim_id)["state"] == "expired"
    assert stored_claim(dynamodb, claim_id) == before


def test_a_lapsed_claim_stops_counting_and_the_next_add_expires_it(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient, northwind: Caller
) -> None:
    lapsed = api.add_claim(security_body())
    clock.advance(timedelta(days=30))
    assert stored_claim(dynamodb, lapsed)["state"] == {"S": "pending_consent"}
    answer = api.add(northwind_body(engagement_ids=[SECURITY]), caller=northwind)
    assert answer.status == 201, answer.body
    theirs = answer.body["claims"][0]["claim_id"]
    stored = stored_claim(dynamodb, lapsed)
    assert stored["state"] == {"S": "expired"}  # written in the same transaction as Northwind's claim
    shown = api.claim(lapsed)
    assert [h["to"] for h in shown["history"]] == ["pending_consent", "expired"]
    assert shown["history"][-1]["at"] == "2026-12-27T10:00:00Z"
    view = DynamoDBStoreView(dynamodb, "ClaimsTable")
    assert view.counter(SECURITY, KEY).holders == {theirs}  # type: ignore[union-attr]
    assert view.guard(SECURITY, KEY, CONTOSO) is None
    # Contoso may add the customer again once Northwind's claim ends
    assert api.cancel(theirs, caller=northwind).status == 200
    again = api.add(security_body())
    assert again.status == 201, again.body


# ---------------------------------------------------------------- roles and idempotency


def test_submitting_and_cancelling_need_an_incentives_role(
    api: LifecycleApi, dynamodb: DynamoDBClient, lambda_context: Any
) -> None:
    claim_id = api.granted()
    before = stored_claim(dynamodb, claim_id)
    for roles in (["referral_admin"], ["mci_operations"]):
        caller = Caller(CONTOSO, roles, lambda_context)
        assert_problem(api.submit(claim_id, caller=caller), 403, "forbidden")
        assert_problem(api.cancel(claim_id, caller=caller), 403, "forbidden")
    assert stored_claim(dynamodb, claim_id) == before


def test_an_idempotency_key_repeats_the_first_answer(api: LifecycleApi, dynamodb: DynamoDBClient) -> None:
    claim_id = api.granted()
    first = api.submit(claim_id, {"notes": "done"}, key="submit-1")
    assert first.status == 200, first.body
    stored = stored_claim(dynamodb, claim_id)
    again = api.submit(claim_id, {"notes": "done"}, key="submit-1")
    assert (again.status, again.body) == (200, first.body)
    assert stored_claim(dynamodb, claim_id) == stored
    assert_problem(api.submit(claim_id, {"notes": "other"}, key="submit-1"), 422, "validation_error")
    assert_problem(api.submit(claim_id, {"notes": "done"}, key="submit-2"), 409, "invalid_state")

    other = api.add_claim(security_body())
    cancelled = api.cancel(other, "not needed", key="cancel-1")
    assert cancelled.status == 200, cancelled.body
    assert api.cancel(other, "not needed", key="cancel-1").body == cancelled.body
    assert [h["to"] for h in api.claim(other)["history"]].count("cancelled") == 1
