"""Issue 15, item 1: the correlation id of the invocation that made a change, in the claim's audit history and on the
emails it sends, through the real handlers on moto.

Every history entry the service writes carries ``correlation_id``: the API request id for a partner's, an operator's
and the customer's changes (the same id as the entry's ``request_id``), the schedule's event id for the sweep's
expiries, and the adding request's id for an overdue claim an add expires. SES feedback writes no history entry.
"""

from __future__ import annotations

import importlib
import io
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from mci.adapters.aws import sesv2, sesv2_one_attempt
from mci.adapters.dynamodb_claims import claim_from_item
from mci.domain.claims import Claim, ClaimState, HistoryEntry
from tests.moto import test_consent_page_route as consent_page
from tests.moto import test_publish_events as publishing
from tests.support.api import Caller
from tests.support.consent import FIRST_REQUEST, SesThrottle, northwind_body, sent_messages, stored_claim, token_in
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.reference import NORTHWIND

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock


pipeline = publishing.pipeline  # fixture: the stream, the real publisher, and a v2 subscriber's rule on the bus
every_log_line = consent_page.every_log_line  # fixture: every line logged at INFO and above, as the service logs it


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> LifecycleApi:
    return lifecycle_api(lambda_context)


def stored(dynamodb: DynamoDBClient, claim_id: str) -> Claim:
    return claim_from_item(stored_claim(dynamodb, claim_id))


def sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    handler = importlib.import_module("functions.expire_claims.app").lambda_handler
    report: dict[str, Any] = handler(event, context)
    return report


def assert_api_made(entry: HistoryEntry) -> None:
    """An entry an API request wrote: its correlation id is that request's id (the one its log lines carry)."""
    assert entry.request_id, entry
    assert entry.correlation_id == entry.request_id, entry


# ---------------------------------------------------------------- the audit history, per writer


def test_every_api_change_keeps_its_requests_correlation_id_in_the_history(
    api: LifecycleApi, dynamodb: DynamoDBClient
) -> None:
    """Add, consent request, the customer's decision on the consent page, submission and review."""
    claim_id = api.reviewed("complete")

    history = stored(dynamodb, claim_id).history

    assert [h.to for h in history] == [
        ClaimState.PENDING_CONSENT,
        ClaimState.CONSENT_REQUESTED,
        ClaimState.CONSENT_GRANTED,
        ClaimState.SUBMITTED,
        ClaimState.COMPLETED,
    ]
    for entry in history:
        assert_api_made(entry)
    assert len({h.correlation_id for h in history}) == len(history)  # one request each


def test_a_cancellation_keeps_its_requests_correlation_id(api: LifecycleApi, dynamodb: DynamoDBClient) -> None:
    claim_id = api.add_claim()
    assert api.cancel(claim_id).status == 200

    assert_api_made(stored(dynamodb, claim_id).history[-1])


def test_the_sweeps_expiry_keeps_the_schedules_event_id(
    api: LifecycleApi, dynamodb: DynamoDBClient, clock: FixedClock, lambda_context: Any
) -> None:
    claim_id = api.add_claim()
    clock.advance(timedelta(days=31))

    assert sweep({"id": "schedule-event-7"}, lambda_context)["expired"] == 1

    expiry = stored(dynamodb, claim_id).history[-1]
    assert (expiry.to, expiry.actor) == (ClaimState.EXPIRED, "system")
    assert expiry.correlation_id == "schedule-event-7"
    assert expiry.request_id is None  # no API request made it: the partner's view is the one a read showed before


def test_a_sweep_run_by_hand_keeps_its_invocations_request_id(
    api: LifecycleApi, dynamodb: DynamoDBClient, clock: FixedClock, lambda_context: Any
) -> None:
    claim_id = api.add_claim()
    clock.advance(timedelta(days=31))

    assert sweep({}, lambda_context)["expired"] == 1

    assert stored(dynamodb, claim_id).history[-1].correlation_id == lambda_context.aws_request_id


def test_an_add_that_expires_an_overdue_claim_keeps_the_adding_requests_correlation_id(
    api: LifecycleApi, dynamodb: DynamoDBClient, clock: FixedClock, lambda_context: Any
) -> None:
    overdue = api.add_claim()
    clock.advance(timedelta(days=31))

    added = api.add(northwind_body(), caller=Caller(NORTHWIND, ["incentives_user"], lambda_context))
    assert added.status == 201, added.body

    adding = stored(dynamodb, added.body["claims"][0]["claim_id"]).history[-1]
    expiry = stored(dynamodb, overdue).history[-1]
    assert expiry.to is ClaimState.EXPIRED
    assert adding.correlation_id
    assert expiry.correlation_id == adding.correlation_id
    assert expiry.request_id is None


def test_ses_feedback_writes_no_history_entry(api: LifecycleApi, dynamodb: DynamoDBClient, lambda_context: Any) -> None:
    from tests.moto.test_ses_feedback import deliver, feedback

    claim_id = api.add_claim()
    api.requested(claim_id)
    before = stored(dynamodb, claim_id)
    message_id = api.claim(claim_id)["consent_email"]["message_id"]

    assert deliver(feedback("ses_bounce", claim_id, message_id), lambda_context) == {"updated": True}

    assert stored(dynamodb, claim_id).history == before.history


def test_the_partners_view_of_the_history_has_no_correlation_field(api: LifecycleApi) -> None:
    """The correlation id is for operators (logs, events, the stored item); the contract's history is unchanged."""
    claim_id = api.add_claim()

    history = api.claim(claim_id)["history"]

    assert set(history[0]) == {"at", "actor", "from", "to", "reason", "request_id"}
    assert "correlation_id" not in json.dumps(api.claim(claim_id))


# ---------------------------------------------------------------- the domain events (v2)


def test_each_v2_event_carries_the_correlation_id_of_the_invocation_that_committed_it(
    api: LifecycleApi, pipeline: publishing.Pipeline, dynamodb: DynamoDBClient, clock: FixedClock, lambda_context: Any
) -> None:
    """Add, first request (and its referral), a resend, the customer's acceptance (and the co-sell upgrade), then
    the sweep's expiry: each event names the request or run that made it, as its history entry does."""
    claim_id = api.add_claim()
    api.requested(claim_id)
    clock.advance(timedelta(hours=1))
    assert api.request(claim_id, {}).status == 200  # a resend
    api.decide(token_in(str(sent_messages()[-1].body)), "accept")
    clock.advance(timedelta(days=91))
    assert sweep({"id": "schedule-event-3"}, lambda_context)["expired"] == 1

    pipeline.publish()

    events = pipeline.events()
    assert {e["detail"]["schema_version"] for e in events} == {"2"}  # the pipeline's rule: a v2 subscriber
    entries = stored(dynamodb, claim_id).history
    add, first, accepted, expired = (h.correlation_id for h in entries)
    assert expired == "schedule-event-3"
    resend = stored(dynamodb, claim_id).consent_email_correlation_id
    assert resend not in (None, first)
    assert [(e["detail_type"], e["detail"]["correlation_id"]) for e in events] == [
        ("ClaimCreated", add),
        ("ConsentRequested", first),
        ("ReferralCreated", first),
        ("ConsentRequested", resend),
        ("ConsentGranted", accepted),
        ("ReferralUpgradedToCoSell", accepted),
        ("ClaimExpired", "schedule-event-3"),
    ]
    assert len({add, first, resend, accepted}) == 4


# ---------------------------------------------------------------- the emails


class SentEmails:
    """Every SendEmail request of the service's SES clients (the API's, the sweep's), as sent (the call goes on to
    moto)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        for client in (sesv2(), sesv2_one_attempt()):
            client.meta.events.register("before-call.sesv2.SendEmail", self._keep)

    def _keep(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(json.loads(params["body"]))

    def tags(self, index: int = -1) -> dict[str, str]:
        return {t["Name"]: t["Value"] for t in self.requests[index]["EmailTags"]}


@pytest.fixture
def emails(api: LifecycleApi) -> SentEmails:
    return SentEmails()


def test_the_consent_email_is_tagged_with_the_correlation_id_of_the_request_that_queued_it(
    api: LifecycleApi, emails: SentEmails, dynamodb: DynamoDBClient
) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)

    requested = stored(dynamodb, claim_id).history[-1]
    assert requested.to is ClaimState.CONSENT_REQUESTED
    assert emails.tags() == {"claim_id": claim_id, "kind": "consent_request", "correlation_id": requested.request_id}


def test_the_partners_notice_and_reminder_carry_the_request_and_the_run_that_queued_them(
    api: LifecycleApi, emails: SentEmails, dynamodb: DynamoDBClient, clock: FixedClock, lambda_context: Any
) -> None:
    reminded = api.add_claim()
    clock.advance(timedelta(days=23))  # the 7-day reminder is due
    assert sweep({"id": "schedule-event-5"}, lambda_context)["reminded"] == 1
    assert emails.tags() == {"claim_id": reminded, "kind": "consent_reminder", "correlation_id": "schedule-event-5"}

    accepted = api.add_claim(northwind_body(), Caller(NORTHWIND, ["incentives_user"], lambda_context))
    api.accept(accepted, Caller(NORTHWIND, ["incentives_user"], lambda_context))
    decision = stored(dynamodb, accepted).history[-1]
    assert emails.tags()["kind"] == "consent_accepted"
    assert emails.tags()["correlation_id"] == decision.request_id


def test_a_consent_email_the_sweep_redelivers_keeps_the_requests_correlation_id(
    api: LifecycleApi, emails: SentEmails, dynamodb: DynamoDBClient, clock: FixedClock, lambda_context: Any
) -> None:
    """request -> email -> bounce: the email SES never took, sent by a later sweep, still names the request."""
    claim_id = api.add_claim()
    SesThrottle(sesv2(), times=1)
    assert api.request(claim_id, FIRST_REQUEST).status == 503
    requested = stored(dynamodb, claim_id)
    clock.advance(timedelta(minutes=6))

    assert sweep({"id": "schedule-event-6"}, lambda_context)["redelivered"] == 1

    assert emails.tags()["kind"] == "consent_request"
    assert emails.tags()["correlation_id"] == requested.history[-1].request_id


def test_the_send_line_names_the_emails_correlation_id_and_no_address(
    api: LifecycleApi, every_log_line: io.StringIO
) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)

    lines = [json.loads(line) for line in every_log_line.getvalue().splitlines()]
    sent = [line for line in lines if line["message"] == "email handed to SES"]
    assert len(sent) == 1
    assert sent[0]["email_correlation_id"] == sent[0]["correlation_id"]  # sent by the request that queued it
    assert (sent[0]["kind"], sent[0]["claim_id"]) == ("consent_request", claim_id)
    assert sent[0]["message_id"]
    assert "ana@fabrikam.com" not in json.dumps(sent[0])


def test_the_feedback_line_names_the_bounced_emails_correlation_id(
    api: LifecycleApi, every_log_line: io.StringIO, lambda_context: Any
) -> None:
    from tests.moto.test_ses_feedback import deliver, feedback

    claim_id = api.add_claim()
    api.requested(claim_id)
    message_id = api.claim(claim_id)["consent_email"]["message_id"]
    event = feedback("ses_bounce", claim_id, message_id)
    event["detail"]["mail"]["tags"]["correlation_id"] = ["J5f0NhCDoAMEVxA_3D"]  # as SES carries the sent tag

    assert deliver(event, lambda_context) == {"updated": True}

    lines = [json.loads(line) for line in every_log_line.getvalue().splitlines()]
    (line,) = [line for line in lines if line["message"] == "SES feedback"]
    assert line["email_correlation_id"] == "J5f0NhCDoAMEVxA="
