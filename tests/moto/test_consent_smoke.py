"""Consent flow end to end through the handlers on moto: request, page, accept (rules 12-16)."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from moto.backends import get_backend

from tests.support.api import Caller
from tests.support.reference import CONTOSO, MIGRATE, add_customer_body


def sent_messages() -> list[Any]:
    return list(get_backend("ses")["123456789012"]["us-east-1"].sent_messages)


@pytest.fixture
def ses(seeded: Any) -> None:
    boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress="noreply@example.com")


def test_request_then_accept(seeded: Any, ses: None, lambda_context: Any) -> None:
    contoso = Caller(CONTOSO, ["incentives_user"], lambda_context)
    added = contoso.call("add_customer", "POST", "/customers", add_customer_body(engagement_ids=[MIGRATE]))
    claim_id = added.body["claims"][0]["claim_id"]
    answer = contoso.call(
        "request_consent", "POST", f"/claims/{claim_id}/consent-requests",
        {"deal_size_usd": 25000, "disclaimer_accepted": True},
        route_key="POST /claims/{claim_id}/consent-requests", path_parameters={"claim_id": claim_id},
    )
    assert answer.status == 200, answer.body
    assert answer.body["state"] == "consent_requested"
    assert answer.body["consent_email"]["status"] == "sent"
    messages = sent_messages()
    assert len(messages) == 1
    body = str(messages[0].body)
    token = re.search(r"/consent/([A-Za-z0-9_-]{43})", body).group(1)  # type: ignore[union-attr]
    public = Caller(None, [], lambda_context)
    page = public.call("consent_page", "GET", f"/consent/{token}", route_key="GET /consent/{token}",
                       path_parameters={"token": token})
    assert page.status == 200
    assert "Doy mi consentimiento" in page.body
    assert page.headers["cache-control"] == "no-store"
    done = public.call("consent_page", "POST", f"/consent/{token}", raw_body="decision=accept",
                       route_key="POST /consent/{token}", path_parameters={"token": token},
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert done.status == 200, done.body
    again = public.call("consent_page", "GET", f"/consent/{token}", route_key="GET /consent/{token}",
                        path_parameters={"token": token})
    assert again.status == 404
    claim = contoso.call("get_claim", "GET", f"/claims/{claim_id}", route_key="GET /claims/{claim_id}",
                         path_parameters={"claim_id": claim_id})
    assert claim.body["state"] == "consent_granted"
    assert claim.body["submission_deadline"]
    known = contoso.call("list_known_customers", "GET", "/known-customers")
    assert known.body["items"][0]["customer_id"].startswith("tenant_id:")
    assert len(sent_messages()) == 2
