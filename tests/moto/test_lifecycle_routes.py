"""Submit, cancel and review through the real handlers on moto (rules 17-20), with exact expiry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from local.moto_patches import lean_moto
from tests.support.api import Answer, Caller
from tests.support.claims import KEY, DynamoDBStoreView
from tests.support.consent import FIRST_REQUEST, northwind_body, sent_messages, stored_claim, stored_item
from tests.support.lifecycle_api import OPERATIONS_PARTNER, LifecycleApi, lifecycle_api
from tests.support.numbered_customers import numbered_body, numbered_customers, numbered_key
from tests.support.reference import CONTOSO, MIGRATE, NORTHWIND, NORTHWIND_DUBLIN, SECURITY, add_customer_body
from tests.support.store_snapshots import TableSnapshot, assert_all_counters_match

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

UNKNOWN_CLAIM = "7d4c1b2a-0000-4000-8000-000000000000"
DAY = timedelta(days=1)
ACTIVE = ("pending_consent", "consent_requested", "consent_granted", "submitted")
ENDED = ("completed", "rejected", "cancelled", "consent_declined", "expired")
LAPSED = ("lapsed_pending", "lapsed_requested", "lapsed_granted")  # past a deadline, not yet swept
CANCELLABLE = ("pending_consent", "consent_requested", "consent_granted")


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> LifecycleApi:
    made = lifecycle_api(lambda_context)
    made.load_reference(numbered_customers(range(1, 21)))
    return made


@pytest.fixture
def northwind(lambda_context: Any) -> Caller:
    return Caller(NORTHWIND, ["incentives_user"], lambda_context)


@pytest.fixture(autouse=True)
def lean_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    lean_moto(monkeypatch)


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


def shown_state(state: str) -> str:
    return "expired" if state in LAPSED else state


def every_state(api: LifecycleApi, clock: FixedClock) -> dict[str, str]:
    """One claim of Contoso in each state (and each lapsed one), all through the real flows.

    Day 0: a claim the sweep will expire. Day 1: a consented claim (submission deadline day 91).
    Day 30: the sweep. Day 60: a pending and a requested claim (consent deadline day 90).
    Day 91: every other state; the three lapsed claims are past their deadlines, none swept.
    """
    claims: dict[str, str] = {}
    number = iter(range(1, 100))

    def body() -> dict[str, Any]:
        return numbered_body(next(number), MIGRATE)

    claims["expired"] = api.add_claim(body())
    api.requested(claims["expired"])
    clock.advance(DAY)
    claims["lapsed_granted"] = api.granted(body())
    clock.advance(29 * DAY)
    assert api.sweep()["expired"] == 1
    clock.advance(30 * DAY)
    claims["lapsed_pending"] = api.add_claim(body())
    claims["lapsed_requested"] = api.add_claim(body())
    api.requested(claims["lapsed_requested"])
    clock.advance(31 * DAY)
    claims["pending_consent"] = api.add_claim(body())
    claims["consent_requested"] = api.add_claim(body())
    api.requested(claims["consent_requested"])
    claims["consent_granted"] = api.granted(body())
    claims["submitted"] = api.submitted(body())
    claims["completed"] = api.reviewed("complete", body())
    claims["rejected"] = api.reviewed("reject", body())
    claims["cancelled"] = api.add_claim(body())
    assert api.cancel(claims["cancelled"]).status == 200
    claims["consent_declined"] = api.declined(body())
    for state, claim_id in claims.items():
        assert api.claim(claim_id)["state"] == shown_state(state), state
    return claims


# ---------------------------------------------------------------- what each state refuses (rules 17-19)


def test_every_state_refuses_what_rule_19_forbids_and_nothing_changes(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    claims = every_state(api, clock)
    stored = {state: stored_claim(dynamodb, claim_id) for state, claim_id in claims.items()}
    shown = {state: api.claim(claim_id) for state, claim_id in claims.items()}
    emails = len(sent_messages())
    for state, claim_id in claims.items():
        seen = shown_state(state)
        if state != "consent_granted":
            answer = api.submit(claim_id)
            if state == "lapsed_granted":
                assert_problem(answer, 410, "deadline_passed")
            else:
                assert_problem(answer, 409, "invalid_state")
                assert answer.body["state"] == seen, state
        if state not in CANCELLABLE:
            answer = api.cancel(claim_id)
            assert_problem(answer, 409, "invalid_state")
            assert answer.body["state"] == seen, state
        if state != "submitted":
            for decision in ("complete", "reject"):
                answer = api.review(claim_id, decision)
                assert_problem(answer, 409, "invalid_state")
                assert answer.body["state"] == seen, state
        if state not in ("pending_consent", "consent_requested"):
            for body in (FIRST_REQUEST, {}):
                answer = api.request(claim_id, body)
                if state in ("expired", "lapsed_pending", "lapsed_requested"):  # the consent deadline passed
                    assert_problem(answer, 410, "deadline_passed")
                else:
                    assert_problem(answer, 409, "invalid_state")
                    assert answer.body["state"] == seen, state
    assert {state: stored_claim(dynamodb, claim_id) for state, claim_id in claims.items()} == stored
    assert {state: api.claim(claim_id) for state, claim_id in claims.items()} == shown
    assert len(sent_messages()) == emails
    assert stored["lapsed_pending"]["state"] == {"S": "pending_consent"}  # nothing wrote the expiry yet


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
    assert claim["submission_deadline"] == granted["submission_deadline"]
    assert api.claim(claim_id) == claim
    assert stored_claim(dynamodb, claim_id)["submission_notes"] == {"S": "workshop delivered"}
    assert DynamoDBStoreView(dynamodb, "ClaimsTable").counter(MIGRATE, KEY).active_count == 1  # type: ignore[union-attr]


def test_submit_after_the_submission_deadline_is_gone(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    on_time = api.granted()
    late = api.granted(add_customer_body(engagement_ids=[SECURITY]))
    deadline = api.claim(late)["submission_deadline"]
    assert deadline == "2027-02-25T10:00:00Z"
    clock.advance(timedelta(days=90) - timedelta(microseconds=1))
    assert api.submit(on_time).status == 200
    clock.advance(timedelta(microseconds=1))
    before = stored_claim(dynamodb, late)
    answer = api.submit(late)
    assert_problem(answer, 410, "deadline_passed")
    assert "2027-02-25T10:00:00" in answer.body["detail"]
    assert stored_claim(dynamodb, late) == before
    assert api.claim(late)["state"] == "expired"
    assert api.claim(on_time)["state"] == "submitted"  # a submitted claim has no deadline left


# ---------------------------------------------------------------- cancel (rule 19)


def test_cancel_ends_each_active_claim_that_is_not_submitted(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    claims = {
        "pending_consent": api.add_claim(numbered_body(1, SECURITY)),
        "consent_requested": api.add_claim(numbered_body(2, SECURITY)),
        "consent_granted": api.granted(numbered_body(3, SECURITY)),
    }
    api.requested(claims["consent_requested"])
    view = DynamoDBStoreView(dynamodb, "ClaimsTable")
    clock.advance(timedelta(hours=5))
    for n, (state, claim_id) in enumerate(claims.items(), start=1):
        assert view.counter(SECURITY, numbered_key(n)).active_count == 1  # type: ignore[union-attr]
        before = api.claim(claim_id)
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
        assert view.counter(SECURITY, numbered_key(n)).active_count == 0  # type: ignore[union-attr]
        assert view.guard(SECURITY, numbered_key(n), CONTOSO) is None


def test_cancelling_a_requested_claim_kills_the_consent_link(api: LifecycleApi, dynamodb: DynamoDBClient) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    assert api.page(token).status == 200
    digest = stored_claim(dynamodb, claim_id)["consent_token_hash"]["S"]
    assert api.cancel(claim_id).status == 200
    neutral = api.page("Q" * 43)
    assert neutral.status in (404, 410)
    for answer in (api.page(token), api.decide(token, "accept"), api.decide(token, "decline")):
        assert (answer.status, answer.body) == (neutral.status, neutral.body)
    assert stored_item(dynamodb, f"TOKEN#{digest}", "TOKEN") is None
    assert "consent_token_hash" not in stored_claim(dynamodb, claim_id)
    assert api.claim(claim_id)["state"] == "cancelled"
    assert api.known_customers().body["items"] == []
    assert len(sent_messages()) == 1  # the request only: no decision notice


def test_cancel_needs_a_reason(api: LifecycleApi, dynamodb: DynamoDBClient) -> None:
    claim_id = api.add_claim()
    before = stored_claim(dynamodb, claim_id)
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": 7}, {"reason": None}):
        answer = api.cancel(claim_id, body=body)
        assert_problem(answer, 422, "validation_error")
        assert [e["field"] for e in answer.body["errors"]] == ["reason"], body
    assert stored_claim(dynamodb, claim_id) == before


# ---------------------------------------------------------------- review (rule 19)


def test_operations_complete_or_reject_a_submitted_claim(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    completed = api.submitted(numbered_body(1, SECURITY))
    rejected = api.submitted(numbered_body(2, SECURITY))
    view = DynamoDBStoreView(dynamodb, "ClaimsTable")
    clock.advance(2 * DAY)
    for n, claim_id, decision, state in ((1, completed, "complete", "completed"), (2, rejected, "reject", "rejected")):
        before = api.claim(claim_id)
        assert view.counter(SECURITY, numbered_key(n)).active_count == 1  # type: ignore[union-attr]
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
        assert view.counter(SECURITY, numbered_key(n)).active_count == 0  # type: ignore[union-attr]


def test_only_operations_review(api: LifecycleApi, dynamodb: DynamoDBClient, lambda_context: Any) -> None:
    claim_id = api.submitted()
    before = stored_claim(dynamodb, claim_id)
    for roles in (
        ["incentives_user"],
        ["incentives_admin"],
        ["referral_admin"],
        ["incentives_admin", "referral_admin"],
    ):
        for partner_id in (CONTOSO, NORTHWIND):
            answer = api.review(claim_id, caller=Caller(partner_id, roles, lambda_context))
            assert_problem(answer, 403, "forbidden")
    assert stored_claim(dynamodb, claim_id) == before
    assert_problem(api.review(claim_id, caller=Caller(None, [], lambda_context)), 401, "unauthorized")


def test_operations_mixed_with_a_partner_or_of_a_partner_do_not_review(
    api: LifecycleApi, dynamodb: DynamoDBClient, lambda_context: Any
) -> None:
    """Rule 30 (issue 12 item 6): Contoso's token holding mci_operations cannot complete Contoso's claim."""
    claim_id = api.submitted()
    before = stored_claim(dynamodb, claim_id)
    for partner_id, roles in (
        (CONTOSO, ["incentives_user", "mci_operations"]),
        (CONTOSO, ["incentives_admin", "mci_operations"]),
        (CONTOSO, ["referral_admin", "mci_operations"]),
        (OPERATIONS_PARTNER, ["incentives_admin", "mci_operations"]),
        (CONTOSO, ["mci_operations"]),
        (NORTHWIND, ["mci_operations"]),
    ):
        answer = api.review(claim_id, caller=Caller(partner_id, roles, lambda_context))
        assert_problem(answer, 403, "forbidden")
    assert stored_claim(dynamodb, claim_id) == before
    assert api.review(claim_id).status == 200  # the operations organisation's own token, as a control


def test_reviewing_an_unknown_claim_is_not_found(api: LifecycleApi) -> None:
    for claim_id in (UNKNOWN_CLAIM, "x" * 200):
        assert_problem(api.review(claim_id), 404, "not_found")


def test_a_review_needs_a_decision_and_a_reason(api: LifecycleApi, dynamodb: DynamoDBClient) -> None:
    claim_id = api.submitted()
    before = stored_claim(dynamodb, claim_id)
    for body, field in (
        ({"decision": "complete"}, "reason"),
        ({"decision": "complete", "reason": ""}, "reason"),
        ({"decision": "reject", "reason": "  "}, "reason"),
        ({"reason": "fine"}, "decision"),
        ({"decision": "approve", "reason": "fine"}, "decision"),
        ({"decision": "complete", "reason": "fine", "state": "completed"}, "state"),
    ):
        answer = api.review(claim_id, body=body)
        assert_problem(answer, 422, "validation_error")
        assert field in [e["field"] for e in answer.body["errors"]], body
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
    history = [entry(h) for h in seen[-1]]
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
    user = f"partner:{CONTOSO}/user:user-1"
    assert [h["actor"] for h in history] == [user, user, "customer", user, "operations:user-1"]
    assert [h["reason"] for h in history] == ["added", "consent requested", "consent accepted", "submitted", "paid"]
    # refused actions add nothing
    api.cancel(claim_id)
    api.submit(claim_id)
    api.review(claim_id, "reject")
    assert api.claim(claim_id)["history"] == seen[-1]


# ---------------------------------------------------------------- the counter (rules 11, 18)


def test_the_customer_is_released_exactly_when_the_claim_ends(
    api: LifecycleApi, northwind: Caller, dynamodb: DynamoDBClient
) -> None:
    """The Security workshop allows one active claim per customer: Northwind gets in once Contoso's ends."""
    view = DynamoDBStoreView(dynamodb, "ClaimsTable")
    endings = ["cancel_pending", "cancel_requested", "cancel_granted", "complete", "reject", "decline"]
    for n, ending in enumerate(endings, start=1):
        key = numbered_key(n)
        theirs = numbered_body(n, SECURITY, location_id=NORTHWIND_DUBLIN)

        def northwind_is_refused(n: int = n, key: str = key, theirs: dict[str, Any] = theirs) -> None:
            answer = api.add(theirs, caller=northwind)
            assert_problem(answer, 409, "active_claim_limit_reached")
            assert view.counter(SECURITY, key).active_count == 1  # type: ignore[union-attr]

        claim_id = api.add_claim(numbered_body(n, SECURITY))
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
        assert view.counter(SECURITY, key).active_count == 0, ending  # type: ignore[union-attr]
        assert view.guard(SECURITY, key, CONTOSO) is None
        answer = api.add(theirs, caller=northwind)
        assert answer.status == 201, (ending, answer.body)
        assert view.counter(SECURITY, key).holders == {answer.body["claims"][0]["claim_id"]}  # type: ignore[union-attr]


# ---------------------------------------------------------------- another partner's claim (§1)


def test_another_partners_claim_is_not_found_on_every_action(
    api: LifecycleApi, dynamodb: DynamoDBClient, northwind: Caller
) -> None:
    claims = {
        "pending_consent": api.add_claim(numbered_body(1, MIGRATE)),
        "consent_requested": api.add_claim(numbered_body(2, MIGRATE)),
        "consent_granted": api.granted(numbered_body(3, MIGRATE)),
        "submitted": api.submitted(numbered_body(4, MIGRATE)),
    }
    api.requested(claims["consent_requested"])
    before = {claim_id: stored_claim(dynamodb, claim_id) for claim_id in claims.values()}

    def every_action(target: str) -> list[Answer]:
        return [
            api.submit(target, caller=northwind),
            api.cancel(target, caller=northwind),
            api.request(target, FIRST_REQUEST, caller=northwind),
            api.request(target, {}, caller=northwind),
            api.get_claim(target, caller=northwind),
        ]

    unknown = every_action(UNKNOWN_CLAIM)
    for claim_id in claims.values():
        for theirs, missing in zip(every_action(claim_id), unknown, strict=True):
            assert_problem(theirs, 404, "not_found")
            assert theirs.body == missing.body
            assert theirs.headers == missing.headers
            assert claim_id not in str(theirs.raw)
    assert {claim_id: stored_claim(dynamodb, claim_id) for claim_id in claims.values()} == before


# ---------------------------------------------------------------- exact expiry (rule 17)


def test_a_lapsed_claim_reads_and_writes_as_expired_before_any_sweep(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    pending = api.add_claim()
    requested = api.add_claim(add_customer_body(engagement_ids=[SECURITY]))
    api.requested(requested)
    clock.advance(timedelta(days=30) - timedelta(microseconds=1))
    assert api.claim(pending)["state"] == "pending_consent"
    assert api.claim(requested)["state"] == "consent_requested"
    clock.advance(timedelta(microseconds=1))
    stored = {c: stored_claim(dynamodb, c) for c in (pending, requested)}
    for claim_id in (pending, requested):
        shown = api.claim(claim_id)
        assert shown["state"] == "expired"
        assert entry(shown["history"][-1])["at"] == "2026-12-27T10:00:00Z"
        assert_problem(api.submit(claim_id), 409, "invalid_state")
        assert_problem(api.cancel(claim_id), 409, "invalid_state")
        assert_problem(api.request(claim_id, FIRST_REQUEST), 410, "deadline_passed")
    assert {c: stored_claim(dynamodb, c) for c in (pending, requested)} == stored
    assert stored[pending]["state"] == {"S": "pending_consent"}


def test_a_lapsed_claim_reads_exactly_as_the_sweep_then_writes_it(api: LifecycleApi, clock: FixedClock) -> None:
    pending = api.add_claim()
    granted = api.granted(add_customer_body(engagement_ids=[SECURITY]))
    clock.advance(timedelta(days=90))  # past both the consent and the submission deadline
    before = {claim_id: api.claim(claim_id) for claim_id in (pending, granted)}
    assert api.sweep()["expired"] == 2
    after = {claim_id: api.claim(claim_id) for claim_id in (pending, granted)}
    for claim_id in (pending, granted):
        assert [entry(h) for h in after[claim_id]["history"]] == [entry(h) for h in before[claim_id]["history"]]
        assert after[claim_id]["state"] == before[claim_id]["state"] == "expired"
    assert entry(after[pending]["history"][-1]) == {
        "at": "2026-12-27T10:00:00Z",
        "actor": "system",
        "from": "pending_consent",
        "to": "expired",
        "reason": "consent deadline passed",
    }
    assert entry(after[granted]["history"][-1])["reason"] == "submission deadline passed"


def test_a_lapsed_consented_claim_can_be_neither_submitted_nor_cancelled(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    claim_id = api.granted()
    clock.advance(timedelta(days=90))
    before = stored_claim(dynamodb, claim_id)
    assert_problem(api.submit(claim_id), 410, "deadline_passed")
    assert_problem(api.cancel(claim_id), 409, "invalid_state")
    assert api.claim(claim_id)["state"] == "expired"
    assert stored_claim(dynamodb, claim_id) == before


def test_a_lapsed_claim_stops_counting_and_the_next_add_expires_it(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient, northwind: Caller
) -> None:
    lapsed = api.add_claim(add_customer_body(engagement_ids=[SECURITY]))
    clock.advance(timedelta(days=30))
    assert stored_claim(dynamodb, lapsed)["state"] == {"S": "pending_consent"}
    answer = api.add(northwind_body(engagement_ids=[SECURITY]), caller=northwind)
    assert answer.status == 201, answer.body
    theirs = answer.body["claims"][0]["claim_id"]
    assert stored_claim(dynamodb, lapsed)["state"] == {"S": "expired"}  # written with Northwind's claim
    shown = api.claim(lapsed)
    assert [h["to"] for h in shown["history"]] == ["pending_consent", "expired"]
    assert shown["history"][-1]["at"] == "2026-12-27T10:00:00Z"
    view = DynamoDBStoreView(dynamodb, "ClaimsTable")
    assert view.counter(SECURITY, KEY).holders == {theirs}  # type: ignore[union-attr]
    assert view.guard(SECURITY, KEY, CONTOSO) is None
    # Contoso may add the customer again once Northwind's claim ends
    assert_problem(api.add(add_customer_body(engagement_ids=[SECURITY])), 409, "active_claim_limit_reached")
    assert api.cancel(theirs, caller=northwind).status == 200
    again = api.add(add_customer_body(engagement_ids=[SECURITY]))
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

    other = api.add_claim(add_customer_body(engagement_ids=[SECURITY]))
    cancelled = api.cancel(other, "not needed", key="cancel-1")
    assert cancelled.status == 200, cancelled.body
    assert api.cancel(other, "not needed", key="cancel-1").body == cancelled.body
    assert [h["to"] for h in api.claim(other)["history"]].count("cancelled") == 1
