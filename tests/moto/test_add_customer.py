"""POST /customers through the real handler on moto (rules 1-11)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Caller
from tests.support.reference import (
    AI,
    CONTOSO,
    FABRIKAM_TENANT,
    MIGRATE,
    NORTHWIND,
    SECURITY,
    add_customer_body,
)


@pytest.fixture
def contoso(seeded: Any, lambda_context: Any) -> Caller:
    return Caller(CONTOSO, ["incentives_user"], lambda_context)


def add(caller: Caller, body: dict[str, Any], **kwargs: Any) -> Any:
    return caller.call("add_customer", "POST", "/customers", body, **kwargs)


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
    assert "customer_key" not in first and "version" not in first
