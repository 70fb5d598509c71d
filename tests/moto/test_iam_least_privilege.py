"""Least privilege from the calls the code makes (issue 12 item 11): each function's IAM grants in template.yaml
are exactly the AWS calls its handler makes on moto, plus the grants an allow-list names with its reason.

The test drives every function's representative flows itself (one test, one process: nothing depends on what
other tests ran, so it holds under pytest-xdist), recording each AWS call as (function, resource, IAM action)
with ``tests.support.iam.AwsCallRecorder``. A call the policy does not grant fails (the function would be
refused in AWS); a grant no flow uses and no allow-list entry explains fails too (privilege to remove).
"""

from __future__ import annotations

import copy
import importlib
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from functions.table import FUNCTIONS
from local.cloudformation import function_environment, load_template
from local.events import load_event
from mci import snapstart, wiring
from tests.support.api import Caller
from tests.support.consent import sent_messages, token_in
from tests.support.iam import (
    SES_CONFIGURATION_SET,
    SES_IDENTITY,
    AwsCallRecorder,
    Grant,
    least_privilege_problems,
)
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.numbered_customers import numbered_body, numbered_customers
from tests.support.reference import AI, CONTOSO, CONTOSO_MADRID, MIGRATE, SECURITY, add_customer_body

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

CLAIMS = "ClaimsTable"
IDEMPOTENCY = "IdempotencyTable"
IDEMPOTENT_ROUTE_FUNCTIONS = (
    "AddCustomerFunction",
    "ClaimCustomerFunction",
    "RequestConsentFunction",
    "SubmitClaimFunction",
    "CancelClaimFunction",
    "ReviewClaimFunction",
    "LoadReferenceDataFunction",
)
# Powertools idempotency deletes its in-progress record when the handler raises (a 5xx), so the retry runs again.
IDEMPOTENCY_DELETE = "an unexpected error deletes the in-progress idempotency record (Powertools), never on success"

# Powertools reads the record back only when a conditional put fails without returning the old item.
IDEMPOTENCY_GET = "a repeat whose conditional put returns no old item is read back (Powertools get_record)"
# DynamoDBClaimRepository._landed: after a lost answer or a conflict on its own retry, the claim is read back.
LANDED = "the read-back of a transaction whose answer was lost (DynamoDBClaimRepository._landed)"
ADD_TIME_EXPIRY = (
    "rule 17 at add time: an overdue claim of the same customer is expired in the same transaction, deleting "
    "its guard (DynamoDBClaimRepository.create, NewClaims.expire)"
)

# Grants no flow below records, each with why it stays. Nothing else may be unused.
KEPT: dict[str, dict[Grant, str]] = {
    **{
        function: {
            (IDEMPOTENCY, "dynamodb:DeleteItem"): IDEMPOTENCY_DELETE,
            (IDEMPOTENCY, "dynamodb:GetItem"): IDEMPOTENCY_GET,
        }
        for function in IDEMPOTENT_ROUTE_FUNCTIONS
    },
    "AddCustomerFunction": {
        (IDEMPOTENCY, "dynamodb:DeleteItem"): IDEMPOTENCY_DELETE,
        (IDEMPOTENCY, "dynamodb:GetItem"): IDEMPOTENCY_GET,
        (CLAIMS, "dynamodb:GetItem"): LANDED,
        (CLAIMS, "dynamodb:DeleteItem"): ADD_TIME_EXPIRY,
    },
    "ClaimCustomerFunction": {
        (IDEMPOTENCY, "dynamodb:DeleteItem"): IDEMPOTENCY_DELETE,
        (IDEMPOTENCY, "dynamodb:GetItem"): IDEMPOTENCY_GET,
        (CLAIMS, "dynamodb:GetItem"): LANDED,
        (CLAIMS, "dynamodb:DeleteItem"): ADD_TIME_EXPIRY,
    },
    "ExpireClaimsFunction": {(CLAIMS, "dynamodb:GetItem"): LANDED},
    "PublishEventsFunction": {
        ("ClaimsTable.StreamArn", "dynamodb:DescribeStream"): "the event source mapping reads the stream as the role",
        ("ClaimsTable.StreamArn", "dynamodb:GetRecords"): "the event source mapping reads the stream as the role",
        ("ClaimsTable.StreamArn", "dynamodb:GetShardIterator"): "the event source mapping reads the stream as the role",
        ("ClaimsTable/stream/*", "dynamodb:ListStreams"): "Lambda lists the table's streams to create the mapping",
        ("PublishEventsDeadLetterQueue", "sqs:SendMessage"): "the mapping's on-failure destination sends as the role",
        ("PublishEventsLogGroup", "logs:CreateLogStream"): "the Lambda runtime writes the function's logs",
        ("PublishEventsLogGroup", "logs:PutLogEvents"): "the Lambda runtime writes the function's logs",
        ("*", "xray:PutTraceSegments"): "Tracing: Active (Globals); the runtime sends the segments",
        ("*", "xray:PutTelemetryRecords"): "Tracing: Active (Globals); the runtime sends the segments",
    },
}


@pytest.fixture
def recorder(seeded: DynamoDBClient, monkeypatch: pytest.MonkeyPatch) -> AwsCallRecorder:
    made = AwsCallRecorder(load_template(), {CLAIMS: CLAIMS, IDEMPOTENCY: IDEMPOTENCY})
    made.install(monkeypatch)
    return made


def _with_key(caller: Caller, path: str, body: Any) -> Any:
    """A mutating route called with an Idempotency-Key, so the idempotency table is used as in production."""
    headers = {"idempotency-key": f"iam-{path}"}
    answer = caller.post(path, body, headers=headers)
    assert 200 <= answer.status < 300, (path, answer.status, answer.body)
    replayed = caller.post(path, body, headers=headers)  # the client's retry
    assert (replayed.status, replayed.body) == (answer.status, answer.body), path
    return answer


def _partner_routes(api: LifecycleApi, lambda_context: Any, clock: FixedClock) -> str:
    """Every partner and operations route once, on a real claim's life; the claim id of a submitted claim."""
    partner = api.partner
    _with_key(api.ops, "/ops/reference-data", numbered_customers(range(1, 3)))
    for path in ("/engagements", "/locations"):
        assert partner.get(path).status == 200
    eligibility = {"location_id": CONTOSO_MADRID, "identifier": {"type": "domain", "value": "fabrikam.com"}}
    assert partner.post("/eligibility-checks", eligibility).status == 200
    quote = {"engagement_id": AI, "location_id": CONTOSO_MADRID, "msx_opportunity_id": "7-ABC123XYZ", "hours": 20}
    assert partner.post("/payment-quotes", quote).status == 200

    added = _with_key(partner, "/customers", add_customer_body())
    claim_id = str(added.body["claims"][0]["claim_id"])
    before = api.known_customers()
    assert before.status == 200
    _with_key(partner, f"/claims/{claim_id}/consent-requests", {"deal_size_usd": 25000, "disclaimer_accepted": True})
    clock.advance(timedelta(hours=1))
    resent = api.request(claim_id, {})  # a resend replaces the link: the old token item is deleted
    assert resent.status == 200, resent.body
    token = token_in(str(sent_messages()[-1].body))
    assert api.page(token).status == 200
    assert api.decide(token, "accept").status == 200
    claim = api.claim(claim_id)
    assert claim["state"] == "consent_granted", claim
    referral_admin = Caller(CONTOSO, ["referral_admin"], lambda_context)
    referral = referral_admin.get(f"/referrals/{claim['referral_id']}")
    assert referral.status == 200, referral.body
    (customer,) = api.known_customers().body["items"]
    customer_id = str(customer["customer_id"])
    claim_body = {"friendly_name": "Fabrikam security", "location_id": CONTOSO_MADRID, "engagement_ids": [SECURITY]}
    claimed = _with_key(partner, f"/known-customers/{customer_id}/claims", claim_body)
    assert api.customers(SECURITY).status == 200
    for tab in ("eligible", "ineligible", "complete"):
        assert api.customers(AI, tab).status == 200
    assert api.attention(limit=1).status == 200

    _with_key(partner, f"/claims/{claim_id}/submission", {})
    _with_key(api.ops, f"/ops/claims/{claim_id}/review", {"decision": "complete", "reason": "checked"})
    other = str(claimed.body["claims"][0]["claim_id"])
    _with_key(partner, f"/claims/{other}/cancellation", {"reason": "changed plans"})
    return claim_id


def _ses_feedback(api: LifecycleApi, lambda_context: Any) -> None:
    """A bounce of a consent email just sent."""
    claim_id = api.add_claim(numbered_body(1, MIGRATE))
    api.requested(claim_id)
    message_id = api.claim(claim_id)["consent_email"]["message_id"]
    event = copy.deepcopy(load_event("ses_bounce"))
    event["detail"]["mail"]["messageId"] = message_id
    event["detail"]["mail"]["commonHeaders"]["messageId"] = message_id
    event["detail"]["mail"]["tags"]["claim_id"] = [claim_id]
    handler = importlib.import_module("functions.ses_feedback.app").lambda_handler
    assert handler(event, lambda_context) == {"updated": True}


def _sweep(api: LifecycleApi, clock: FixedClock) -> None:
    """Reminders, then expiry: a pending claim through the sweep's two kinds of work."""
    api.add_claim(numbered_body(2, MIGRATE))
    clock.advance(timedelta(days=24))
    reminded = api.sweep()
    clock.advance(timedelta(days=10))
    expired = api.sweep()
    assert reminded != expired, (reminded, expired)


def _publish(lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One stream batch through the publisher, onto the stack's bus."""
    bus_name = function_environment(load_template(), "PublishEventsFunction")["EVENT_BUS_NAME"]
    boto3.client("events", region_name="us-east-1").create_event_bus(Name=bus_name)
    monkeypatch.setenv("EVENT_BUS_NAME", bus_name)
    wiring.reset()
    handler = importlib.import_module("functions.publish_events.app").lambda_handler
    answer = handler(load_event("publish_events"), lambda_context)
    assert answer == {"batchItemFailures": []}, answer


def test_each_function_is_granted_exactly_the_calls_its_flows_make(
    recorder: AwsCallRecorder, lambda_context: Any, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = lifecycle_api(lambda_context)
    _partner_routes(api, lambda_context, clock)
    _ses_feedback(api, lambda_context)
    _sweep(api, clock)
    _publish(lambda_context, monkeypatch)

    problems = least_privilege_problems(load_template(), recorder.calls, KEPT)
    assert not problems, "\n".join(problems)
    unprimed = unprimed_calls(recorder.operations)
    assert not unprimed, f"SnapStart priming leaves out calls these functions make: {unprimed}"


def unprimed_calls(made: dict[str, set[str]]) -> dict[str, set[str]]:
    """The client operations an HTTP function made that its SnapStart priming does not call (mci.snapstart)."""
    missing: dict[str, set[str]] = {}
    for function in FUNCTIONS:
        if not function.routes:
            continue
        module = importlib.import_module(f"functions.{function.folder}.app")
        (hook,) = [h for h in snapstart.BEFORE_SNAPSHOT if isinstance(h, partial) and h.args[0] is module.app]
        primed = snapstart.aws_calls(module.app, [factory() for factory in hook.args[1]])
        calls = {f"{service}:{operation}" for service, operations in primed.items() for operation in operations}
        if made.get(function.logical_id, set()) - calls:
            missing[function.logical_id] = made[function.logical_id] - calls
    return missing


def test_a_missing_or_unused_grant_is_reported() -> None:
    """The comparison itself: a call without its grant, a grant without its call, a stale allow-list entry."""
    template = load_template()
    reads = {(CLAIMS, "dynamodb:GetItem"), (CLAIMS, "dynamodb:BatchGetItem"), (CLAIMS, "dynamodb:Query")}
    calls = {"ReadsFunction": {*reads, ("ClaimsTable/index/GSI1", "dynamodb:Query"), (CLAIMS, "dynamodb:PutItem")}}
    kept = {"ReadsFunction": {(CLAIMS, "dynamodb:UpdateItem"): "stale"}}
    problems = [p for p in least_privilege_problems(template, calls, kept) if p.startswith(("Reads", "KEPT"))]
    assert problems == [
        "ReadsFunction calls dynamodb:PutItem on ClaimsTable, not granted",
        "KEPT names ('ClaimsTable', 'dynamodb:UpdateItem') for ReadsFunction, which is not granted",
    ]
    assert "ReadsFunction is granted dynamodb:GetItem on ClaimsTable, which no flow uses" in "\n".join(
        least_privilege_problems(template, {"ReadsFunction": set()}, {})
    )


def test_a_call_snapstart_priming_leaves_out_is_reported() -> None:
    """The comparison itself: a DynamoDB Scan no adapter names, and SES, which the reads never prime."""
    made = {"ReadsFunction": {"dynamodb:Query", "dynamodb:Scan", "sesv2:SendEmail"}, "AddCustomerFunction": set()}
    assert unprimed_calls(made) == {"ReadsFunction": {"dynamodb:Scan", "sesv2:SendEmail"}}


def test_the_recorder_maps_calls_to_iam_actions() -> None:
    recorder = AwsCallRecorder({"Resources": {}}, {CLAIMS: "claims-dev"})
    transaction = {"TransactItems": [{"Put": {"TableName": "claims-dev"}}, {"ConditionCheck": {"TableName": "x"}}]}
    assert set(recorder._grants("dynamodb", "TransactWriteItems", transaction)) == {
        (CLAIMS, "dynamodb:PutItem"),
        ("x", "dynamodb:ConditionCheckItem"),
    }
    query = {"TableName": "claims-dev", "IndexName": "GSI1"}
    assert set(recorder._grants("dynamodb", "Query", query)) == {(f"{CLAIMS}/index/GSI1", "dynamodb:Query")}
    assert set(recorder._grants("ses", "SendEmail", {})) == {
        (SES_IDENTITY, "ses:SendEmail"),
        (SES_CONFIGURATION_SET, "ses:SendEmail"),
    }
