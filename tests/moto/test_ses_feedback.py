"""SES bounce and complaint events (EventBridge, SES event publishing) mark the claim's consent email."""

from __future__ import annotations

import copy
import importlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from local.events import load_event
from tests.support.consent import ConsentApi, consent_api, stored_claim

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> ConsentApi:
    return consent_api(lambda_context)


def feedback(name: str, claim_id: str, message_id: str) -> dict[str, Any]:
    """The sample event with this claim's tag and message id."""
    event = copy.deepcopy(load_event(name))
    mail = event["detail"]["mail"]
    mail["messageId"] = message_id
    mail["commonHeaders"]["messageId"] = message_id
    mail["tags"]["claim_id"] = [claim_id]
    return event


def deliver(event: dict[str, Any], context: Any) -> dict[str, Any]:
    handler = importlib.import_module("functions.ses_feedback.app").lambda_handler
    answer: dict[str, Any] = handler(event, context)
    return answer


def requested(api: ConsentApi) -> tuple[str, str]:
    claim_id = api.add_claim()
    api.requested(claim_id)
    message_id: str = api.claim(claim_id)["consent_email"]["message_id"]
    return claim_id, message_id


@pytest.mark.parametrize(
    ("name", "detail_type", "event_type"),
    [("ses_bounce", "Email Bounced", "Bounce"), ("ses_complaint", "Email Complaint Received", "Complaint")],
)
def test_the_sample_events_have_the_ses_event_publishing_shape(name: str, detail_type: str, event_type: str) -> None:
    event = load_event(name)
    assert (event["source"], event["detail-type"]) == ("aws.ses", detail_type)
    detail = event["detail"]
    assert detail["eventType"] == event_type
    assert event_type.lower() in detail
    assert detail["mail"]["messageId"] == detail["mail"]["commonHeaders"]["messageId"]
    assert isinstance(detail["mail"]["tags"]["claim_id"], list)


def test_a_bounce_marks_the_consent_email_bounced(api: ConsentApi, clock: FixedClock, lambda_context: Any) -> None:
    claim_id, message_id = requested(api)
    clock.advance(timedelta(minutes=3))
    assert deliver(feedback("ses_bounce", claim_id, message_id), lambda_context) == {"updated": True}
    claim = api.claim(claim_id)
    email = claim["consent_email"]
    assert email["status"] == "bounced"
    assert email["message_id"] == message_id
    assert email["to"] == "ana@fabrikam.com"
    assert email["sent_at"] == "2026-11-27T10:00:00Z"
    assert email["updated_at"] == "2026-11-27T10:03:00Z"
    assert claim["state"] == "consent_requested"  # the partner fixes the address and resends


def test_a_complaint_marks_the_consent_email_complained(api: ConsentApi, lambda_context: Any) -> None:
    claim_id, message_id = requested(api)
    assert deliver(feedback("ses_complaint", claim_id, message_id), lambda_context) == {"updated": True}
    assert api.claim(claim_id)["consent_email"]["status"] == "complained"


def test_a_bounce_of_an_earlier_email_changes_nothing(
    api: ConsentApi, clock: FixedClock, dynamodb: DynamoDBClient, lambda_context: Any
) -> None:
    claim_id, first_message = requested(api)
    clock.advance(timedelta(hours=1))
    api.requested(claim_id, {"customer_contact": {"name": "Ana García", "email": "ana.garcia@fabrikam.com"}})
    before = stored_claim(dynamodb, claim_id)
    assert before["consent_email"]["M"]["message_id"]["S"] != first_message
    assert deliver(feedback("ses_bounce", claim_id, first_message), lambda_context) == {"updated": False}
    assert stored_claim(dynamodb, claim_id) == before
    assert api.claim(claim_id)["consent_email"]["status"] == "sent"


def test_a_repeated_bounce_changes_nothing_more(api: ConsentApi, dynamodb: DynamoDBClient, lambda_context: Any) -> None:
    claim_id, message_id = requested(api)
    event = feedback("ses_bounce", claim_id, message_id)
    assert deliver(event, lambda_context) == {"updated": True}
    before = stored_claim(dynamodb, claim_id)
    assert deliver(event, lambda_context) == {"updated": False}
    assert stored_claim(dynamodb, claim_id) == before


@pytest.mark.parametrize(
    "spoil",
    [
        lambda e: e["detail"]["mail"]["tags"].update(claim_id=["7d4c1b2a-0000-4000-8000-00000000dead"]),
        lambda e: e["detail"]["mail"]["tags"].pop("claim_id"),
        lambda e: e["detail"]["mail"].pop("messageId"),
        lambda e: e["detail"].update(eventType="Delivery"),
        lambda e: e.pop("detail"),
    ],
    ids=["unknown-claim", "no-claim-tag", "no-message-id", "delivery", "no-detail"],
)
def test_events_that_name_no_current_email_change_nothing(
    api: ConsentApi, dynamodb: DynamoDBClient, lambda_context: Any, spoil: Any
) -> None:
    claim_id, message_id = requested(api)
    before = stored_claim(dynamodb, claim_id)
    event = feedback("ses_bounce", claim_id, message_id)
    spoil(event)
    assert deliver(event, lambda_context) == {"updated": False}
    assert stored_claim(dynamodb, claim_id) == before


def test_a_bounce_before_any_consent_email_changes_nothing(
    api: ConsentApi, dynamodb: DynamoDBClient, lambda_context: Any
) -> None:
    claim_id = api.add_claim()
    before = stored_claim(dynamodb, claim_id)
    assert deliver(feedback("ses_bounce", claim_id, "0100-anything"), lambda_context) == {"updated": False}
    assert stored_claim(dynamodb, claim_id) == before
