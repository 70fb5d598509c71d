"""GET /claims/{claim_id} and GET /known-customers on moto: ownership, exact expiry, consent delivery."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.api import Caller
from tests.support.consent import ConsentApi, consent_api, sent_messages, stored_claim
from tests.support.reference import FABRIKAM_TENANT, NORTHWIND

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> ConsentApi:
    return consent_api(lambda_context)


@pytest.fixture
def northwind(lambda_context: Any) -> Caller:
    return Caller(NORTHWIND, ["incentives_user"], lambda_context)


def test_another_partners_claim_reads_exactly_like_an_unknown_one(api: ConsentApi, northwind: Caller) -> None:
    claim_id = api.add_claim()
    theirs = api.get_claim(claim_id, caller=northwind)
    unknown = api.get_claim("7d4c1b2a-0000-4000-8000-000000000000", caller=northwind)
    too_long = api.get_claim("x" * 200, caller=northwind)
    assert theirs.status == unknown.status == too_long.status == 404
    assert theirs.body == unknown.body == too_long.body
    assert theirs.headers == unknown.headers
    assert theirs.body["code"] == "not_found"
    assert claim_id not in str(theirs.raw)
    assert api.get_claim(claim_id).status == 200


def test_reading_a_claim_needs_an_incentives_role(api: ConsentApi, lambda_context: Any) -> None:
    claim_id = api.add_claim()
    referral_admin = Caller(api.partner.claims["partner_id"], ["referral_admin"], lambda_context)  # type: ignore[index]
    assert api.get_claim(claim_id, caller=referral_admin).status == 403


def test_a_new_claim_shows_no_consent_requests_yet(api: ConsentApi) -> None:
    claim = api.claim(api.add_claim())
    assert claim["state"] == "pending_consent"
    assert claim["consent_requests"] == {"count": 0, "last_sent_at": None}
    assert claim["consent_email"] is None
    assert claim["consent_deadline"] == "2026-12-27T10:00:00Z"


def test_the_claim_shows_its_consent_requests_and_the_last_email(api: ConsentApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)
    clock.advance(timedelta(hours=2, minutes=30))
    api.requested(claim_id, {})
    claim = api.claim(claim_id)
    assert claim["consent_requests"] == {"count": 2, "last_sent_at": "2026-11-27T12:30:00Z"}
    email = claim["consent_email"]
    assert email["status"] == "sent"
    assert email["to"] == "ana@fabrikam.com"
    assert email["sent_at"] == "2026-11-27T12:30:00Z"
    assert email["message_id"] == sent_messages()[-1].id
    assert email["message_id"] != sent_messages()[0].id


def test_a_claim_past_its_consent_deadline_reads_as_expired_before_any_sweep(
    api: ConsentApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)
    clock.advance(timedelta(days=30) - timedelta(microseconds=1))
    assert api.claim(claim_id)["state"] == "consent_requested"
    clock.advance(timedelta(microseconds=1))
    stored = stored_claim(dynamodb, claim_id)
    claim = api.claim(claim_id)
    assert claim["state"] == "expired"
    last = claim["history"][-1]
    assert (last["from"], last["to"], last["at"]) == ("consent_requested", "expired", "2026-12-27T10:00:00Z")
    assert stored_claim(dynamodb, claim_id) == stored  # reading wrote nothing
    assert stored["state"] == {"S": "consent_requested"}


def test_a_never_requested_claim_also_expires_on_read(api: ConsentApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    clock.advance(timedelta(days=31))
    assert api.claim(claim_id)["state"] == "expired"


def test_a_consented_claim_past_its_submission_deadline_reads_as_expired(api: ConsentApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    clock.advance(timedelta(days=1))
    assert api.decide(token, "accept").status == 200
    deadline = api.claim(claim_id)["submission_deadline"]
    assert deadline == "2027-02-26T10:00:00Z"
    clock.advance(timedelta(days=90) - timedelta(seconds=1))
    assert api.claim(claim_id)["state"] == "consent_granted"
    clock.advance(timedelta(seconds=1))
    claim = api.claim(claim_id)
    assert claim["state"] == "expired"
    assert claim["history"][-1]["at"] == deadline


def test_known_customers_are_the_partners_own(api: ConsentApi, northwind: Caller) -> None:
    assert api.known_customers().body == {"items": []}
    token = api.requested(api.add_claim())
    assert api.decide(token, "accept").status == 200
    [mine] = api.known_customers().body["items"]
    assert mine["customer_id"] == f"tenant_id:{FABRIKAM_TENANT}"
    assert mine["name"] == "Fabrikam migration"
    assert mine["last_contact"]["email"] == "ana@fabrikam.com"
    assert api.known_customers(caller=northwind).body == {"items": []}
