"""SPEC §6 over HTTP: the authorizer, the demo data, the real handlers, time travel and the docs."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e

CONTOSO = "p-contoso-partners"
LOCATION = "1234567"
MIGRATE = "e-azure-migrate"
CLOSED = "e-legacy-modernize"
UNAUTHORIZED = {"message": "Unauthorized"}


@pytest.fixture(scope="module")
def token(local_stack: StackClient) -> str:
    return local_stack.token(CONTOSO, ["incentives_user"])


def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


# ---------------------------------------------------------------- the authorizer


def test_no_token_is_401(local_stack: StackClient) -> None:
    answer = local_stack.request("GET", "/engagements")
    assert answer.status == 401
    assert answer.json() == UNAUTHORIZED


def test_alg_none_is_401(local_stack: StackClient, token: str) -> None:
    unsigned = f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(_payload(token))}."
    answer = local_stack.request("GET", "/engagements", token=unsigned)
    assert answer.status == 401
    assert answer.json() == UNAUTHORIZED


def test_expired_token_is_401(local_stack: StackClient) -> None:
    expired = local_stack.token(CONTOSO, ["incentives_user"], expires_in=-60)
    answer = local_stack.request("GET", "/engagements", token=expired)
    assert answer.status == 401
    assert "expired" in answer.headers.get("www-authenticate", "")


def test_wrong_audience_is_401(local_stack: StackClient) -> None:
    stranger = local_stack.token(CONTOSO, ["incentives_user"], claims={"aud": "another-api"})
    answer = local_stack.request("GET", "/engagements", token=stranger)
    assert answer.status == 401
    assert answer.json() == UNAUTHORIZED


def test_unknown_route_is_404_like_api_gateway(local_stack: StackClient, token: str) -> None:
    answer = local_stack.request("GET", "/no-such-route", token=token)
    assert answer.status == 404
    assert answer.json() == {"message": "Not Found"}


@pytest.mark.parametrize("forged", [["mci_operations"], "mci_operations", "[mci_operations]"], ids=repr)
def test_a_forged_roles_claim_without_the_operations_scope_is_forbidden_like_api_gateway(
    local_stack: StackClient, forged: Any
) -> None:
    """Issue 12 item 7: the token is issued for a partner role (scope mci/partner), its roles claim then says
    mci_operations: the route's AuthorizationScopes stop it before the handler, as API Gateway would."""
    token = local_stack.token(CONTOSO, ["incentives_admin"], claims={"roles": forged})
    assert _payload(token)["scope"] == "mci/partner"
    for path in ("/ops/reference-data?dry_run=true", f"/ops/claims/{uuid.uuid4()}/review"):
        answer = local_stack.request("POST", path, {"decision": "complete", "reason": "forged"}, token=token)
        assert answer.status == 403, (path, answer.text)
        assert answer.json() == {"message": "Forbidden"}, path


def test_an_operations_token_carries_the_operations_scope_and_reaches_only_operations_routes(
    local_stack: StackClient,
) -> None:
    operations = local_stack.token("mci-operations", ["mci_operations"])
    assert _payload(operations)["scope"] == "mci/operations"
    loaded = local_stack.request("POST", "/ops/reference-data?dry_run=true", {}, token=operations)
    assert loaded.status == 200, loaded.text
    partner_route = local_stack.request("GET", "/engagements", token=operations)
    assert partner_route.status == 403, partner_route.text
    assert partner_route.json() == {"message": "Forbidden"}


# ---------------------------------------------------------------- the real handlers on the demo data


def test_engagements_open_to_the_partner(local_stack: StackClient, token: str) -> None:
    answer = local_stack.request("GET", "/engagements", token=token)
    assert answer.status == 200, answer.text
    ids = {item["engagement_id"] for item in answer.json()["items"]}
    assert MIGRATE in ids
    assert CLOSED not in ids


def test_eligibility_check(local_stack: StackClient, token: str) -> None:
    body = {"location_id": LOCATION, "identifier": {"type": "domain", "value": "fabrikam.com"}}
    answer = local_stack.request("POST", "/eligibility-checks", body, token=token)
    assert answer.status == 200, answer.text
    result = answer.json()
    assert MIGRATE in {e["engagement_id"] for e in result["eligible"]}
    assert CLOSED in {e["engagement_id"] for e in result["ineligible"]}


def test_add_customer_is_idempotent(local_stack: StackClient, token: str) -> None:
    body = {
        "friendly_name": "Fabrikam migration",
        "location_id": LOCATION,
        "identifier": {"type": "domain", "value": "fabrikam.com"},
        "engagement_ids": [MIGRATE],
        "customer_contact": {"name": "Ana García", "email": "ana@fabrikam.com", "language": "es"},
        "partner_contact": {"name": "Sam Lee", "email": "sam@contoso-partners.com"},
    }
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    first = local_stack.request("POST", "/customers", body, token=token, headers=key)
    assert first.status == 201, first.text
    (claim,) = first.json()["claims"]
    assert claim["engagement_id"] == MIGRATE
    assert claim["partner_id"] == CONTOSO
    assert claim["state"] == "pending_consent"
    assert first.headers.get("apigw-requestid")

    again = local_stack.request("POST", "/customers", body, token=token, headers=key)
    assert again.status == 201, again.text
    assert [c["claim_id"] for c in again.json()["claims"]] == [claim["claim_id"]]


# ---------------------------------------------------------------- local-only routes


def test_clock_moves_forward(local_stack: StackClient) -> None:
    before = local_stack.request("GET", "/_local/clock").json()
    answer = local_stack.request("POST", "/_local/clock", {"advance_days": 0.5})
    assert answer.status == 200, answer.text
    after = answer.json()
    assert after["now"] > before["now"]
    assert after["offset_days"] == pytest.approx(before["offset_days"] + 0.5)
    refused = local_stack.request("POST", "/_local/clock", {"advance_days": -1})
    assert refused.status == 422


def test_openapi_json(local_stack: StackClient) -> None:
    answer = local_stack.request("GET", "/openapi.json")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/json")
    document = answer.json()
    assert document["info"]["title"] == "MCI engagement customers"
    assert "/customers" in document["paths"]


def test_docs_use_only_local_assets(local_stack: StackClient) -> None:
    page = local_stack.request("GET", "/docs")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references, page.text
    for reference in references:
        # Same-origin paths only: no scheme, no protocol-relative //host.
        assert re.fullmatch(r"/(?!/)[\w./-]*", reference), reference
        asset = local_stack.request("GET", reference)
        assert asset.status == 200, reference
    initializer = local_stack.request("GET", "/docs/swagger-initializer.js").text
    assert '"/openapi.json"' in initializer
    assert not re.search(r"https?://", initializer)
