"""POST /claims/{claim_id}/consent-requests through the real handler on moto (rules 12-15, SPEC §4)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from mci.adapters.aws import sesv2
from mci.emails import render as render_module
from tests.support.api import Caller
from tests.support.consent import (
    FIRST_REQUEST,
    ConsentApi,
    SesThrottle,
    consent_api,
    every_item,
    recipients,
    sent_messages,
    stored_claim,
    stored_item,
    token_in,
)
from tests.support.reference import NORTHWIND

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

HOUR = timedelta(hours=1)


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> ConsentApi:
    return consent_api(lambda_context)


def is_problem(answer: Any, status: int, code: str) -> bool:
    return (
        answer.status == status
        and answer.headers["content-type"] == "application/problem+json"
        and answer.body["code"] == code
        and answer.body["status"] == status
    )


# ---------------------------------------------------------------- first request


FIRST = {"deal_size_usd": 25000, "disclaimer_accepted": True}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"deal_size_usd", "disclaimer_accepted"}),
        ({"disclaimer_accepted": True}, {"deal_size_usd"}),
        ({"deal_size_usd": 25000}, {"disclaimer_accepted"}),
        ({"deal_size_usd": 25000, "disclaimer_accepted": False}, {"disclaimer_accepted"}),
        ({"deal_size_usd": 0, "disclaimer_accepted": True}, {"deal_size_usd"}),
        ({"deal_size_usd": -10, "disclaimer_accepted": True}, {"deal_size_usd"}),
        ({"deal_size_usd": "lots", "disclaimer_accepted": True}, {"deal_size_usd"}),
        ({"deal_size_usd": 25000, "disclaimer_accepted": "yes"}, {"disclaimer_accepted"}),
        # rule 27: strict types
        ({"deal_size_usd": "500", "disclaimer_accepted": True}, {"deal_size_usd"}),
        ({"deal_size_usd": True, "disclaimer_accepted": True}, {"deal_size_usd"}),
        ({"deal_size_usd": 25000, "disclaimer_accepted": "true"}, {"disclaimer_accepted"}),
        ({"deal_size_usd": 25000, "disclaimer_accepted": 1}, {"disclaimer_accepted"}),
        # rule 28: addresses SES delivers to, names without control characters
        (
            {**FIRST, "customer_contact": {"name": "José", "email": "josé@example.com"}},
            {"customer_contact.email"},
        ),
        (
            {**FIRST, "partner_contact": {"name": "Sam\r\nBcc: a@evil.example", "email": "sam@contoso.com"}},
            {"partner_contact.name"},
        ),
    ],
)
def test_the_first_request_needs_a_positive_deal_size_and_the_disclaimer(
    api: ConsentApi, dynamodb: DynamoDBClient, body: dict[str, Any], fields: set[str]
) -> None:
    claim_id = api.add_claim()
    before = stored_claim(dynamodb, claim_id)
    answer = api.request(claim_id, body)
    assert is_problem(answer, 422, "validation_error"), answer.body
    assert {e["field"] for e in answer.body["errors"]} == fields
    for field in fields:
        assert field in answer.body["detail"]
    assert stored_claim(dynamodb, claim_id) == before
    assert sent_messages() == []


def test_unknown_fields_are_refused(api: ConsentApi) -> None:
    claim_id = api.add_claim()
    answer = api.request(claim_id, {**FIRST_REQUEST, "consent_deadline": "2030-01-01T00:00:00Z"})
    assert is_problem(answer, 422, "validation_error")
    assert sent_messages() == []


def test_the_first_request_emails_the_customer_and_moves_the_claim(api: ConsentApi) -> None:
    claim_id = api.add_claim()
    answer = api.request(claim_id, FIRST_REQUEST)
    assert answer.status == 200, answer.body
    claim = answer.body
    assert claim["state"] == "consent_requested"
    assert claim["deal_size_usd"] == 25000
    assert claim["consent_deadline"] == "2026-12-27T10:00:00Z"
    assert claim["consent_requests"] == {"count": 1, "last_sent_at": "2026-11-27T10:00:00Z"}
    assert claim["consent_email"]["status"] == "sent"
    assert claim["consent_email"]["to"] == "ana@fabrikam.com"
    assert [(h["from"], h["to"]) for h in claim["history"]][-1] == ("pending_consent", "consent_requested")
    assert "consent_token_hash" not in claim
    [message] = sent_messages()
    assert recipients(message) == ["ana@fabrikam.com"]
    assert message.id == claim["consent_email"]["message_id"]
    assert message.subject == "Contoso Partners Madrid solicita su consentimiento: Azure Migrate assessment"
    assert "27 de diciembre de 2026" in message.body
    assert f"http://127.0.0.1:3000/consent/{token_in(message.body)}" in message.body


def test_the_table_keeps_only_the_hash_of_the_link(api: ConsentApi, dynamodb: DynamoDBClient) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    digest = hashlib.sha256(token.encode()).hexdigest()
    items = every_item(dynamodb)
    assert token not in json.dumps(items, default=str)
    tokens = [i for i in items if i.get("type") == {"S": "consent_token"}]
    assert [(t["PK"]["S"], t["SK"]["S"]) for t in tokens] == [(f"TOKEN#{digest}", "TOKEN")]
    assert tokens[0]["claim_id"] == {"S": claim_id}
    assert tokens[0]["expires_at"] == {"S": "2026-12-27T10:00:00.000000Z"}
    assert stored_claim(dynamodb, claim_id)["consent_token_hash"] == {"S": digest}


# ---------------------------------------------------------------- deal size, deadline, resend limits


def test_the_deal_size_is_locked(api: ConsentApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)
    clock.advance(HOUR)
    answer = api.request(claim_id, {"deal_size_usd": 30000})
    assert is_problem(answer, 409, "deal_size_locked"), answer.body
    assert len(sent_messages()) == 1
    same = api.request(claim_id, {"deal_size_usd": 25000.00})
    assert same.status == 200, same.body
    assert same.body["deal_size_usd"] == 25000
    assert same.body["consent_requests"]["count"] == 2


def test_resends_never_move_the_consent_deadline(api: ConsentApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    created = api.claim(claim_id)
    api.requested(claim_id)
    for _ in range(3):
        clock.advance(5 * HOUR)
        token = api.requested(claim_id, {})
        assert api.claim(claim_id)["consent_deadline"] == created["consent_deadline"] == "2026-12-27T10:00:00Z"
        assert "27 de diciembre de 2026" in str(sent_messages()[-1].body)
        assert api.page(token).status == 200


def test_a_resend_within_the_hour_is_refused(api: ConsentApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)
    clock.advance(HOUR - timedelta(seconds=1))
    answer = api.request(claim_id, {})
    assert is_problem(answer, 409, "resend_limit"), answer.body
    assert answer.body["next_allowed_at"] == "2026-11-27T11:00:00.000000Z"
    assert len(sent_messages()) == 1
    clock.advance(timedelta(seconds=1))
    again = api.request(claim_id, {})
    assert again.status == 200, again.body
    assert again.body["consent_requests"] == {"count": 2, "last_sent_at": "2026-11-27T11:00:00Z"}
    assert len(sent_messages()) == 2


def test_the_sixth_resend_is_refused(api: ConsentApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)
    for resend in range(1, 6):
        clock.advance(HOUR)
        answer = api.request(claim_id, {})
        assert answer.status == 200, (resend, answer.body)
    assert api.claim(claim_id)["consent_requests"]["count"] == 6
    clock.advance(3 * HOUR)
    answer = api.request(claim_id, {})
    assert is_problem(answer, 409, "resend_limit"), answer.body
    assert len(sent_messages()) == 6


def test_no_resend_after_the_deadline(api: ConsentApi, clock: FixedClock, dynamodb: DynamoDBClient) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)
    before = stored_claim(dynamodb, claim_id)
    clock.advance(timedelta(days=30))
    answer = api.request(claim_id, {})
    assert is_problem(answer, 410, "deadline_passed"), answer.body
    assert stored_claim(dynamodb, claim_id) == before
    assert len(sent_messages()) == 1


@pytest.mark.parametrize("decision", ["accept", "decline"])
def test_no_resend_once_the_customer_answered(
    api: ConsentApi, clock: FixedClock, dynamodb: DynamoDBClient, decision: str
) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    assert api.decide(token, decision).status == 200
    decided = stored_claim(dynamodb, claim_id)
    clock.advance(2 * HOUR)
    answer = api.request(claim_id, {})
    assert is_problem(answer, 409, "invalid_state"), answer.body
    assert stored_claim(dynamodb, claim_id) == decided
    assert len(sent_messages()) == 2  # the request and the partner's notice


def test_a_resend_rotates_the_link(api: ConsentApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    old = api.requested(claim_id)
    clock.advance(HOUR)
    new = api.requested(claim_id, {})
    assert new != old
    gone, unknown = api.page(old), api.page("B" * 43)
    assert (gone.status, gone.body) == (404, unknown.body)
    assert api.page(new).status == 200
    assert api.decide(old, "accept").status == 404
    assert api.claim(claim_id)["state"] == "consent_requested"


def test_a_resend_may_update_contacts_and_goes_to_the_new_address(api: ConsentApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)
    clock.advance(HOUR)
    answer = api.request(
        claim_id,
        {
            "customer_contact": {"name": "Luis Pérez", "email": "luis@fabrikam.com", "language": "en"},
            "partner_contact": {"name": "Jo Park", "email": "jo@contoso-partners.com"},
        },
    )
    assert answer.status == 200, answer.body
    assert answer.body["customer_contact"]["email"] == "luis@fabrikam.com"
    assert answer.body["partner_contact"]["name"] == "Jo Park"
    assert answer.body["consent_email"]["to"] == "luis@fabrikam.com"
    message = sent_messages()[-1]
    assert recipients(message) == ["luis@fabrikam.com"]
    assert message.subject == "Contoso Partners Madrid asks for your consent: Azure Migrate assessment"
    assert "27 December 2026" in message.body
    assert api.claim(claim_id)["customer_contact"]["name"] == "Luis Pérez"


def test_another_partner_cannot_request_consent(api: ConsentApi, dynamodb: DynamoDBClient, lambda_context: Any) -> None:
    claim_id = api.add_claim()
    before = stored_claim(dynamodb, claim_id)
    northwind = Caller(NORTHWIND, ["incentives_user"], lambda_context)
    other = api.request(claim_id, FIRST_REQUEST, caller=northwind)
    unknown = api.request("7d4c1b2a-0000-4000-8000-000000000000", FIRST_REQUEST)
    assert other.status == unknown.status == 404
    assert other.body == unknown.body
    assert stored_claim(dynamodb, claim_id) == before
    assert sent_messages() == []


# ---------------------------------------------------------------- Idempotency-Key


def test_a_retried_request_with_the_same_key_sends_no_second_email(api: ConsentApi, dynamodb: DynamoDBClient) -> None:
    claim_id = api.add_claim()
    first = api.request(claim_id, FIRST_REQUEST, key="consent-1")
    assert first.status == 200, first.body
    stored = stored_claim(dynamodb, claim_id)
    again = api.request(claim_id, FIRST_REQUEST, key="consent-1")
    assert again.status == 200, again.body
    assert again.body == first.body
    assert len(sent_messages()) == 1
    assert stored_claim(dynamodb, claim_id) == stored
    assert api.claim(claim_id)["consent_requests"]["count"] == 1


def test_the_same_key_with_another_body_is_refused(api: ConsentApi) -> None:
    claim_id = api.add_claim()
    assert api.request(claim_id, FIRST_REQUEST, key="consent-2").status == 200
    other = api.request(claim_id, {"deal_size_usd": 26000, "disclaimer_accepted": True}, key="consent-2")
    assert is_problem(other, 422, "validation_error"), other.body
    assert len(sent_messages()) == 1


def test_a_retried_resend_with_the_same_key_is_not_a_second_resend(api: ConsentApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)
    clock.advance(HOUR)
    first = api.request(claim_id, {}, key="resend-1")
    clock.advance(timedelta(minutes=5))
    again = api.request(claim_id, {}, key="resend-1")
    assert first.status == again.status == 200
    assert again.body == first.body
    assert len(sent_messages()) == 2
    assert api.claim(claim_id)["consent_requests"]["count"] == 2


# ---------------------------------------------------------------- SES throttling


def test_a_throttled_send_is_a_503_and_the_retry_sends_exactly_once(
    api: ConsentApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    claim_id = api.add_claim()
    throttle = SesThrottle(sesv2())
    answer = api.request(claim_id, FIRST_REQUEST, key="throttled-1")
    assert is_problem(answer, 503, "dependency_unavailable"), answer.body
    assert int(answer.headers["retry-after"]) >= 1
    assert sent_messages() == []
    undelivered = token_in(throttle.refused_text())

    pending = api.claim(claim_id)
    assert pending["state"] == "consent_requested"
    assert pending["consent_email"]["status"] == "pending"
    assert pending["consent_email"]["message_id"] is None
    assert pending["consent_requests"] == {"count": 1, "last_sent_at": "2026-11-27T10:00:00Z"}
    assert pending["deal_size_usd"] == 25000

    clock.advance(timedelta(seconds=2))
    retried = api.request(claim_id, FIRST_REQUEST, key="throttled-1")
    assert retried.status == 200, retried.body
    assert retried.body["consent_email"]["status"] == "sent"
    assert retried.body["consent_requests"] == {"count": 1, "last_sent_at": "2026-11-27T10:00:00Z"}
    [message] = sent_messages()
    assert message.id == retried.body["consent_email"]["message_id"]
    delivered = token_in(message.body)
    assert delivered != undelivered
    # The link that never reached anyone is dead; only the delivered one works.
    assert api.page(undelivered).status == 404
    assert api.page(delivered).status == 200
    tokens = [i for i in every_item(dynamodb) if i.get("type") == {"S": "consent_token"}]
    assert [t["PK"]["S"] for t in tokens] == [f"TOKEN#{hashlib.sha256(delivered.encode()).hexdigest()}"]
    assert stored_item(dynamodb, f"TOKEN#{hashlib.sha256(undelivered.encode()).hexdigest()}", "TOKEN") is None
    assert throttle.remaining == 0


# ---------------------------------------------------------------- consent evidence (AT1)


def stored_evidence(dynamodb: DynamoDBClient, claim_id: str) -> list[dict[str, Any]]:
    """The claim's ``consent_evidence`` exactly as the table holds it, as plain values."""
    item = stored_claim(dynamodb, claim_id)
    plain = TypeDeserializer().deserialize(item["consent_evidence"])
    return [{k: (int(v) if isinstance(v, Decimal) else v) for k, v in record.items()} for record in plain]


def template_digest(kind: str, language: str) -> str:
    """The digest of the template text, computed here from the files, not by the renderer."""
    folder = Path(render_module.__file__).parent / "templates"
    texts = [(folder / f"{kind}.{language}.{ext}").read_text(encoding="utf-8") for ext in ("txt", "html")]
    return hashlib.sha256("\0".join([render_module.SUBJECTS[(kind, language)], *texts]).encode()).hexdigest()[:16]


def test_each_consent_email_leaves_its_evidence_on_the_stored_claim(
    api: ConsentApi, dynamodb: DynamoDBClient, clock: FixedClock
) -> None:
    claim_id = api.add_claim()
    created = api.claim(claim_id)
    assert stored_evidence(dynamodb, claim_id) == []
    api.requested(claim_id)
    [first_message] = sent_messages()

    version = f"consent_request.es@{template_digest('consent_request', 'es')}"
    first = {
        "sent_at": "2026-11-27T10:00:00Z",
        "to": "ana@fabrikam.com",
        "language": "es",
        "template_version": version,
        "message_id": first_message.id,
        "deal_size_usd": 25000,
        "hours": created["hours"],
        "proposed_payment_usd": created["proposed_payment_usd"],
    }
    assert stored_evidence(dynamodb, claim_id) == [first]
    assert api.claim(claim_id)["consent_evidence"] == [first]

    # A resend adds its own record (its own message id and time, the same locked terms); the first stays.
    clock.advance(HOUR)
    api.requested(claim_id, {"deal_size_usd": 25000})
    second_message = sent_messages()[-1]
    assert second_message.id != first_message.id
    assert stored_evidence(dynamodb, claim_id) == [
        first,
        {**first, "sent_at": "2026-11-27T11:00:00Z", "message_id": second_message.id},
    ]


# ---------------------------------------------------------------- rule 29: SES refuses for good


def test_a_consent_email_ses_rejects_for_good_is_a_422_recorded_on_the_claim_and_fixed_by_a_new_contact(
    api: ConsentApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    """Issue 17, item 1: a MessageRejected answered 500 and left the email pending, retried by every sweep."""
    claim_id = api.add_claim()
    SesThrottle(sesv2(), code="MessageRejected", status=400)
    answer = api.request(claim_id, FIRST_REQUEST, key="rejected-1")
    assert is_problem(answer, 422, "email_rejected"), answer.body
    assert [e["field"] for e in answer.body["errors"]] == ["customer_contact.email"]
    assert sent_messages() == []

    refused = api.claim(claim_id)
    assert refused["state"] == "consent_requested"  # consistent: the request stands, its email did not go
    assert refused["consent_email"]["status"] == "rejected"
    assert [(f["kind"], f["to"], f["reason"]) for f in refused["email_failures"]] == [
        ("consent_request", "ana@fabrikam.com", "email_rejected")
    ]
    # never retried by the sweep: the claim is next due at its first reminder, not in five minutes
    assert stored_claim(dynamodb, claim_id)["due_at"]["S"].startswith("2026-12-20")

    clock.advance(timedelta(minutes=1))  # the partner fixes the address at once: not a resend (rule 14)
    fixed = {"customer_contact": {"name": "Ana García", "email": "ana.garcia@fabrikam.com", "language": "es"}}
    again = api.request(claim_id, fixed, key="rejected-2")
    assert again.status == 200, again.body
    assert again.body["consent_email"]["status"] == "sent"
    assert again.body["consent_requests"]["count"] == 1
    [message] = sent_messages()
    assert recipients(message) == ["ana.garcia@fabrikam.com"]


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDeniedException", 403), ("SendingPausedException", 400), ("NotFoundException", 404)],
)
def test_an_ses_refusal_an_operator_must_fix_is_a_503_and_the_email_stays_in_the_outbox(
    api: ConsentApi, code: str, status: int
) -> None:
    """Issue 17, item 1: access denied, sending paused, a missing configuration set answered 500."""
    claim_id = api.add_claim()
    SesThrottle(sesv2(), code=code, status=status)
    answer = api.request(claim_id, FIRST_REQUEST, key=f"operator-{code}")
    assert is_problem(answer, 503, "dependency_unavailable"), answer.body
    assert int(answer.headers["retry-after"]) >= 1
    assert api.claim(claim_id)["consent_email"]["status"] == "pending"


def test_the_customers_page_row_shows_a_rejected_consent_email_and_offers_the_resend_at_once(
    api: ConsentApi, clock: FixedClock
) -> None:
    """Rule 29: the partner sees the failed delivery on the Customers page, and can fix it without waiting."""
    claim_id = api.add_claim()
    SesThrottle(sesv2(), code="MessageRejected", status=400)
    assert api.request(claim_id, FIRST_REQUEST).status == 422
    clock.advance(timedelta(minutes=1))
    answer = api.get("/engagements/e-azure-migrate/customers")
    assert answer.status == 200, answer.body
    [row] = [item for item in answer.body["items"] if item["claim_id"] == claim_id]
    assert row["consent_email_status"] == "rejected"
    assert row["actions"] == ["resend_consent", "cancel"]
