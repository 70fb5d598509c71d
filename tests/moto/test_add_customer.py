"""POST /customers through the real handler on moto (rules 1-11)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from mci import wiring
from mci.adapters import aws
from mci.adapters.dynamodb_claims import _translate_cancellation
from mci.domain.claims import ClaimState
from mci.domain.errors import DependencyUnavailable
from mci.domain.reference import ReferenceData
from tests.support.api import Answer, Caller
from tests.support.claims import KEY, DynamoDBStoreView, assert_counter_matches_claims
from tests.support.logs import service_log_lines
from tests.support.reference import (
    AI,
    CONTOSO,
    CONTOSO_SEATTLE,
    FABRIKAM_TENANT,
    LEGACY,
    MIGRATE,
    NORTHWIND,
    NORTHWIND_DUBLIN,
    SECURITY,
    add_customer_body,
)


@pytest.fixture
def contoso(seeded: Any, lambda_context: Any) -> Caller:
    return Caller(CONTOSO, ["incentives_user"], lambda_context)


@pytest.fixture
def northwind(seeded: Any, lambda_context: Any) -> Caller:
    return Caller(NORTHWIND, ["incentives_user"], lambda_context)


def add(caller: Caller, body: dict[str, Any], **kwargs: Any) -> Any:
    return caller.post("/customers", body, **kwargs)


def test_adds_one_claim_per_engagement(contoso: Caller) -> None:
    answer = add(contoso, add_customer_body(engagement_ids=[MIGRATE, SECURITY]))
    assert answer.status == 201, answer.body
    claims = answer.body["claims"]
    assert [c["engagement_id"] for c in claims] == [MIGRATE, SECURITY]
    first = claims[0]
    assert first["state"] == "pending_consent"
    assert first["identifier"] == {"type": "domain", "value": "fabrikam.com", "resolved_tenant_id": FABRIKAM_TENANT}
    assert first["partner_id"] == CONTOSO
    assert first["consent_deadline"] == "2026-12-27T10:00:00Z"
    assert first["history"][0]["to"] == "pending_consent"
    assert "customer_key" not in first
    assert "version" not in first


ITEM_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"


@pytest.fixture
def transactions_refused_as_invalid(seeded: Any) -> Iterator[None]:
    """DynamoDB cancels every TransactWriteItems as the real engine does when an Update would grow an item past
    400 KB (DynamoDB Local's answer, reason and message): ``TransactionCanceledException`` whose reason on that item
    is ``ValidationError``. moto answers a plain ValidationException, as both engines do for an oversized Put."""

    def refuse(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        count = len(json.loads(params["body"])["TransactItems"])
        reasons = [{"Code": "ValidationError", "Message": ITEM_TOO_LARGE}] + [{"Code": "None"}] * (count - 1)
        parsed = {
            "Error": {
                "Code": "TransactionCanceledException",
                "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
            },
            "CancellationReasons": reasons,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("https://dynamodb", 400, {}, None), parsed

    events = aws.dynamodb().meta.events
    events.register("before-call.dynamodb.TransactWriteItems", refuse, unique_id="refuse-as-invalid")
    yield
    events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="refuse-as-invalid")


def test_a_transaction_dynamodb_refuses_as_invalid_is_an_operators_503_with_the_reason_logged(
    contoso: Caller, transactions_refused_as_invalid: None
) -> None:
    """Every field a client sends is bounded, so no claim, counter or guard nears DynamoDB's 400 KB: a transaction
    refused as invalid is a request the service built wrong, answered as a ValidationException is (an operator's
    problem: 503 with Retry-After, never a 500), and its reasons are logged by item, never the items."""
    with service_log_lines() as lines:
        answer = add(contoso, add_customer_body())

    assert answer.status == 503, answer.body
    assert answer.body["code"] == "dependency_unavailable"
    assert answer.headers["retry-after"] == str(aws.OPERATOR_RETRY_AFTER_SECONDS)
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    refused = next(line for line in logged if line["message"] == "transaction refused")
    assert refused["level"] == "ERROR"
    assert refused["reasons"] == [{"item": 0, "code": "ValidationError", "message": ITEM_TOO_LARGE}]
    assert "ValidationError" in next(line for line in logged if line["message"] == "dependency unavailable")["detail"]
    assert "fabrikam" not in lines.getvalue().lower()


def test_a_cancellation_refusing_an_item_beside_a_failed_condition_is_an_operators_problem_not_a_conflict() -> None:
    """One item refused as invalid, another's condition failed: the conflict branch came first, so the caller
    re-read and wrote the same refused item again, and answered a conflict for the service's own bad request."""
    reasons = [{"Code": "ConditionalCheckFailed"}, {"Code": "ValidationError", "Message": ITEM_TOO_LARGE}]
    error = ClientError(
        {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons}, "TransactWriteItems"
    )
    translated = _translate_cancellation(error)
    assert isinstance(translated, DependencyUnavailable)
    assert translated.retry_after_seconds == aws.OPERATOR_RETRY_AFTER_SECONDS


# --- helpers reading the table directly (tests only) ---------------------------------------------------


def scan(client: Any, table: str = "ClaimsTable") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def stored_claim_ids(client: Any) -> set[str]:
    return {i["claim_id"]["S"] for i in scan(client) if i.get("type", {}).get("S") == "claim"}


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.body["code"] == code
    assert answer.body["status"] == status
    assert answer.body["type"].endswith("/" + code)
    assert answer.body["title"]
    assert answer.body["detail"]


# --- the claim as created -------------------------------------------------------------------------------


def test_the_claims_are_stored(contoso: Caller, seeded: Any) -> None:
    answer = add(contoso, add_customer_body(engagement_ids=[MIGRATE, SECURITY]))
    assert stored_claim_ids(seeded) == {c["claim_id"] for c in answer.body["claims"]}


def test_the_claim_has_every_field_of_the_contract(contoso: Caller) -> None:
    [claim] = add(contoso, add_customer_body()).body["claims"]
    contract = {
        "claim_id", "partner_id", "location_id", "engagement_id", "friendly_name", "identifier", "origin", "state",
        "customer_contact", "partner_contact", "tenant_mismatch_reason", "hours", "proposed_payment_usd",
        "deal_size_usd", "consent_deadline", "submission_deadline", "consent_requests", "referral_id",
        "created_at", "updated_at", "history",
    }  # fmt: skip
    assert contract <= set(claim)
    assert claim["origin"] == "added"
    assert claim["created_at"] == "2026-11-27T10:00:00Z"
    assert claim["customer_contact"] == {
        "name": "Ana García",
        "email": "ana@fabrikam.com",
        "phone": None,
        "language": "es",
    }
    [created] = claim["history"]
    request_id = created.pop("request_id")
    assert request_id  # the audit trail names the API request that made the change
    assert created == {
        "at": "2026-11-27T10:00:00Z",
        "actor": "partner:p-contoso-partners/user:user-1",
        "from": None,
        "to": "pending_consent",
        "reason": "added",
    }


def test_a_variable_claim_keeps_hours_and_payment(contoso: Caller) -> None:
    body = add_customer_body(
        identifier={"type": "msx_opportunity_id", "value": "7-ABC123XYZ"}, engagement_ids=[AI], hours=100
    )
    answer = add(contoso, body)
    assert answer.status == 201, answer.body
    [claim] = answer.body["claims"]
    assert (claim["hours"], claim["proposed_payment_usd"]) == (100, 15000)


# --- rule 7: all or nothing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engagement_ids", "code"),
    [([MIGRATE, SECURITY, LEGACY], "engagement_closed"), ([LEGACY, MIGRATE], "engagement_closed")],
)
def test_one_ineligible_engagement_creates_no_claim_at_all(
    contoso: Caller, seeded: Any, engagement_ids: list[str], code: str
) -> None:
    before = scan(seeded)
    answer = add(contoso, add_customer_body(engagement_ids=engagement_ids))
    assert_problem(answer, 422, code)
    assert [e["engagement_id"] for e in answer.body["engagements"]] == [LEGACY]
    assert scan(seeded) == before


def test_one_engagement_at_its_limit_creates_no_claim_at_all(contoso: Caller, northwind: Caller, seeded: Any) -> None:
    add(northwind, add_customer_body(location_id=NORTHWIND_DUBLIN, engagement_ids=[SECURITY]))
    before = scan(seeded)
    answer = add(contoso, add_customer_body(engagement_ids=[MIGRATE, SECURITY]))
    assert_problem(answer, 409, "active_claim_limit_reached")
    assert len(scan(seeded)) == len(before)
    assert len(stored_claim_ids(seeded)) == 1


def test_closed_engagement(contoso: Caller) -> None:
    answer = add(contoso, add_customer_body(engagement_ids=[LEGACY]))
    assert_problem(answer, 422, "engagement_closed")
    assert answer.body["engagements"][0]["reasons"][0]["code"] == "engagement_closed"


def test_location_not_enrolled(contoso: Caller, seeded: Any) -> None:
    answer = add(contoso, add_customer_body(location_id=CONTOSO_SEATTLE))
    assert_problem(answer, 422, "location_not_enrolled")
    assert stored_claim_ids(seeded) == set()


def test_customer_not_found(contoso: Caller) -> None:
    answer = add(contoso, add_customer_body(identifier={"type": "domain", "value": "unknown.example"}))
    assert_problem(answer, 422, "customer_not_found")


# --- rule 10 and 11: duplicates and limits ------------------------------------------------------------


def test_duplicate_names_the_existing_claim(contoso: Caller, seeded: Any) -> None:
    [first] = add(contoso, add_customer_body()).body["claims"]
    answer = add(contoso, add_customer_body(friendly_name="Second try"))
    assert_problem(answer, 409, "duplicate_claim")
    assert answer.body["existing_claim_id"] == first["claim_id"]
    assert first["claim_id"] in answer.body["detail"]
    assert stored_claim_ids(seeded) == {first["claim_id"]}


def test_by_domain_then_by_its_tenant_is_a_duplicate(contoso: Caller) -> None:
    [first] = add(contoso, add_customer_body()).body["claims"]
    answer = add(contoso, add_customer_body(identifier={"type": "tenant_id", "value": FABRIKAM_TENANT.upper()}))
    assert_problem(answer, 409, "duplicate_claim")
    assert answer.body["existing_claim_id"] == first["claim_id"]


def test_the_limit_counts_other_partners(contoso: Caller, northwind: Caller, seeded: Any) -> None:
    first = add(northwind, add_customer_body(location_id=NORTHWIND_DUBLIN, engagement_ids=[SECURITY]))
    assert first.status == 201, first.body
    answer = add(contoso, add_customer_body(engagement_ids=[SECURITY]))
    assert_problem(answer, 409, "active_claim_limit_reached")
    assert "existing_claim_id" not in answer.body
    assert len(stored_claim_ids(seeded)) == 1


def test_another_partner_may_add_the_same_customer_within_the_limit(
    contoso: Caller, northwind: Caller, seeded: Any
) -> None:
    first = add(contoso, add_customer_body())
    answer = add(northwind, add_customer_body(location_id=NORTHWIND_DUBLIN))
    assert answer.status == 201, answer.body
    store = DynamoDBStoreView(seeded, "ClaimsTable")
    stored = {c.claim_id: c for c in store.claims_of(MIGRATE, KEY)}
    assert {c.partner_id for c in stored.values()} == {CONTOSO, NORTHWIND}
    assert set(stored) == {first.body["claims"][0]["claim_id"], answer.body["claims"][0]["claim_id"]}
    assert {c.state for c in stored.values()} == {ClaimState.PENDING_CONSENT}
    assert store.counter(MIGRATE, KEY).active_count == 2  # type: ignore[union-attr]
    assert_counter_matches_claims(store, MIGRATE, KEY)


# --- rule 4 over HTTP --------------------------------------------------------------------------------


def test_tenant_mismatch_needs_a_reason(contoso: Caller, seeded: Any) -> None:
    body = add_customer_body(
        identifier={"type": "tenant_id", "value": FABRIKAM_TENANT},
        customer_contact={"name": "Ana", "email": "ana@tailspintoys.com"},
    )
    answer = add(contoso, body)
    assert_problem(answer, 422, "tenant_mismatch_reason_required")
    assert stored_claim_ids(seeded) == set()
    answer = add(contoso, {**body, "tenant_mismatch_reason": "Contact is at the parent company"})
    assert answer.status == 201, answer.body
    assert answer.body["claims"][0]["tenant_mismatch_reason"] == "Contact is at the parent company"


# --- rule 1: who may add, and from which location ---------------------------------------------------------


def test_another_partners_location_is_answered_like_an_unknown_one(contoso: Caller, seeded: Any) -> None:
    theirs = add(contoso, add_customer_body(location_id=NORTHWIND_DUBLIN))
    unknown = add(contoso, add_customer_body(location_id="9999999"))
    assert_problem(theirs, 422, "validation_error")
    assert [e["field"] for e in theirs.body["errors"]] == ["location_id"]
    assert theirs.body == unknown.body
    assert theirs.headers == unknown.headers
    assert stored_claim_ids(seeded) == set()


@pytest.mark.parametrize("roles", [["referral_admin"], ["mci_operations"], []])
def test_a_claim_role_is_required(seeded: Any, lambda_context: Any, roles: list[str]) -> None:
    answer = add(Caller(CONTOSO, roles, lambda_context), add_customer_body())
    assert_problem(answer, 403, "forbidden")
    assert stored_claim_ids(seeded) == set()


def test_incentives_admin_may_add(seeded: Any, lambda_context: Any) -> None:
    answer = add(Caller(CONTOSO, ["referral_admin", "incentives_admin"], lambda_context), add_customer_body())
    assert answer.status == 201, answer.body
    [claim] = DynamoDBStoreView(seeded, "ClaimsTable").claims_of(MIGRATE, KEY)
    assert claim.claim_id == answer.body["claims"][0]["claim_id"]
    assert (claim.partner_id, claim.state) == (CONTOSO, ClaimState.PENDING_CONSENT)
    assert [(h.actor, h.to) for h in claim.history] == [(f"partner:{CONTOSO}/user:user-1", ClaimState.PENDING_CONSENT)]
    assert_counter_matches_claims(DynamoDBStoreView(seeded, "ClaimsTable"), MIGRATE, KEY)


def test_no_token_is_401(seeded: Any, lambda_context: Any) -> None:
    answer = add(Caller(None, [], lambda_context), add_customer_body())
    assert_problem(answer, 401, "unauthorized")
    assert stored_claim_ids(seeded) == set()


# --- Idempotency-Key ---------------------------------------------------------------------------------


def test_same_key_and_body_returns_the_first_response(contoso: Caller, seeded: Any) -> None:
    body = add_customer_body(engagement_ids=[MIGRATE, SECURITY])
    key = {"Idempotency-Key": "add-fabrikam-1"}
    first = add(contoso, body, headers=key)
    assert first.status == 201, first.body
    claims_after_first = scan(seeded)
    again = add(contoso, body, headers=key)
    assert again.status == 201
    assert again.headers["content-type"] == "application/json"
    assert again.body == first.body
    assert [c["claim_id"] for c in again.body["claims"]] == [c["claim_id"] for c in first.body["claims"]]
    assert scan(seeded) == claims_after_first


def test_without_a_key_a_repeat_is_a_duplicate(contoso: Caller) -> None:
    add(contoso, add_customer_body())
    assert_problem(add(contoso, add_customer_body()), 409, "duplicate_claim")


def test_same_key_with_another_body_is_422(contoso: Caller, seeded: Any) -> None:
    key = {"Idempotency-Key": "add-fabrikam-2"}
    first = add(contoso, add_customer_body(), headers=key)
    assert first.status == 201
    stored = scan(seeded)
    answer = add(contoso, add_customer_body(engagement_ids=[SECURITY]), headers=key)
    assert_problem(answer, 422, "validation_error")
    assert answer.body["errors"][0]["field"] == "Idempotency-Key"
    assert answer.body["errors"][0]["code"] == "idempotency_key_reused"
    assert scan(seeded) == stored


def test_a_key_is_scoped_to_the_partner(contoso: Caller, northwind: Caller, seeded: Any) -> None:
    key = {"Idempotency-Key": "shared-key"}
    mine = add(contoso, add_customer_body(), headers=key)
    theirs = add(northwind, add_customer_body(location_id=NORTHWIND_DUBLIN), headers=key)
    assert (mine.status, theirs.status) == (201, 201), theirs.body
    assert theirs.body["claims"][0]["partner_id"] == NORTHWIND
    assert theirs.body["claims"][0]["claim_id"] != mine.body["claims"][0]["claim_id"]
    assert len(stored_claim_ids(seeded)) == 2


def test_the_same_body_under_another_partner_is_not_their_replay(contoso: Caller, northwind: Caller) -> None:
    """Northwind re-sending Contoso's exact request and key gets its own answer, never Contoso's claims."""
    key = {"Idempotency-Key": "copied-key"}
    body = add_customer_body()
    assert add(contoso, body, headers=key).status == 201
    answer = add(northwind, body, headers=key)
    assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["location_id"]


def test_a_refused_request_is_not_remembered(contoso: Caller, seeded: Any) -> None:
    """Only successes are replayed: once the obstacle is gone the same key and body succeed."""
    key = {"Idempotency-Key": "retry-after-enrolment"}
    body = add_customer_body(location_id=CONTOSO_SEATTLE)
    assert_problem(add(contoso, body, headers=key), 422, "location_not_enrolled")
    seattle = wiring.services().reference.get_location(CONTOSO_SEATTLE)
    assert seattle is not None
    wiring.services().reference.save(ReferenceData(locations=[seattle.model_copy(update={"enrolled_in_mci": True})]))
    answer = add(contoso, body, headers=key)
    assert answer.status == 201, answer.body
    assert stored_claim_ids(seeded) == {answer.body["claims"][0]["claim_id"]}


@pytest.mark.parametrize("key", ["has space", "x" * 256, "ñ"])
def test_a_malformed_key_is_refused(contoso: Caller, seeded: Any, key: str) -> None:
    answer = add(contoso, add_customer_body(), headers={"Idempotency-Key": key})
    assert_problem(answer, 422, "validation_error")
    assert answer.body["errors"][0]["field"] == "Idempotency-Key"
    assert stored_claim_ids(seeded) == set()
