"""Rules 25-26 through the real handlers on moto: the referral a consent request creates, GET /referrals/{id}
for referral_admin of the same partner only, the co-sell upgrade and the closure as stored and as read."""

from __future__ import annotations

import copy
import importlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from local.events import load_event
from tests.support.api import Answer, Caller
from tests.support.consent import northwind_body, stored_claim, stored_item
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.reference import (
    CONTOSO,
    FABRIKAM_TENANT,
    MIGRATE,
    NORTHWIND,
    SECURITY,
    TAILSPIN_TENANT,
    add_customer_body,
    demo_json,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

UNKNOWN_REFERRAL = "7d4c1b2a-0000-4000-8000-00000000beef"
# SPEC rule 25: what a referral reads as.
REFERRAL_FIELDS = {
    "referral_id",
    "claim_id",
    "engagement_id",
    "type",
    "status",
    "deal_size_usd",
    "customer",
    "created_at",
    "updated_at",
}


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> LifecycleApi:
    return lifecycle_api(lambda_context)


@pytest.fixture
def admin(lambda_context: Any) -> Caller:
    return Caller(CONTOSO, ["referral_admin"], lambda_context)


def get_referral(caller: Caller, referral_id: str) -> Answer:
    return caller.get(f"/referrals/{referral_id}")


def requested_with_deal(api: LifecycleApi, deal: Any, body: dict[str, Any] | None = None) -> dict[str, Any]:
    claim_id = api.add_claim(body)
    answer = api.request(claim_id, {"deal_size_usd": deal, "disclaimer_accepted": True})
    assert answer.status == 200, answer.body
    claim: dict[str, Any] = answer.body
    return claim


def referral_as(admin: Caller, referral_id: str) -> dict[str, Any]:
    answer = get_referral(admin, referral_id)
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.body
    return body


# ---------------------------------------------------------------- creation and reading


def test_a_referral_admin_reads_the_referral_of_a_claim_of_its_partner(
    api: LifecycleApi, admin: Caller, dynamodb: DynamoDBClient
) -> None:
    claim = requested_with_deal(api, 25000)
    referral_id = claim["referral_id"]
    assert referral_id
    assert api.claim(claim["claim_id"])["referral_id"] == referral_id

    answer = get_referral(admin, referral_id)

    assert answer.status == 200, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    referral = answer.body
    assert set(referral) >= REFERRAL_FIELDS
    assert referral["referral_id"] == referral_id
    assert referral["claim_id"] == claim["claim_id"]
    assert referral["engagement_id"] == MIGRATE
    assert (referral["type"], referral["status"]) == ("partner_led", "active")
    assert referral["deal_size_usd"] == 25000
    assert referral["customer"]["identifier_type"] == "tenant_id"
    assert referral["customer"]["identifier_value"] == FABRIKAM_TENANT
    assert referral["created_at"] == referral["updated_at"] == claim["updated_at"]
    # As stored: the item kind in ``type``, the referral's own type in ``referral_type``.
    item = stored_item(dynamodb, f"REFERRAL#{referral_id}", "REFERRAL")
    assert item is not None
    assert (item["type"], item["referral_type"]) == ({"S": "referral"}, {"S": "partner_led"})


def test_the_sample_event_reads_a_referral(api: LifecycleApi, lambda_context: Any) -> None:
    referral_id = requested_with_deal(api, 25000)["referral_id"]
    event = copy.deepcopy(load_event("get_referral"))
    event["pathParameters"]["referral_id"] = referral_id
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/referrals/{referral_id}"
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["roles"] == "[referral_admin]"

    answer = importlib.import_module("functions.reads.app").lambda_handler(event, lambda_context)

    assert answer["statusCode"] == 200, answer


@pytest.mark.parametrize(("deal", "created"), [(9999, False), (9999.99, False), (10000, True), (10001, True)])
def test_the_minimum_deal_size_decides_over_http(api: LifecycleApi, deal: Any, created: bool) -> None:
    claim = requested_with_deal(api, deal)
    assert (claim["referral_id"] is not None) is created


def test_no_referral_on_an_engagement_without_referrals(api: LifecycleApi) -> None:
    claim = requested_with_deal(api, 500000, add_customer_body(engagement_ids=[SECURITY]))
    assert claim["referral_id"] is None


@pytest.mark.parametrize("roles", [["incentives_user"], ["incentives_admin"], ["mci_operations"]])
def test_other_roles_of_the_same_partner_are_refused(api: LifecycleApi, lambda_context: Any, roles: list[str]) -> None:
    referral_id = requested_with_deal(api, 25000)["referral_id"]
    for target in (referral_id, UNKNOWN_REFERRAL):
        answer = get_referral(Caller(CONTOSO, roles, lambda_context), target)
        assert answer.status == 403, answer.body
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.body["code"] == "forbidden"


def test_another_partners_referral_reads_exactly_like_an_unknown_one(api: LifecycleApi, lambda_context: Any) -> None:
    referral_id = requested_with_deal(api, 25000)["referral_id"]
    northwind_admin = Caller(NORTHWIND, ["referral_admin"], lambda_context)

    theirs = get_referral(northwind_admin, referral_id)
    unknown = get_referral(northwind_admin, UNKNOWN_REFERRAL)
    too_long = get_referral(northwind_admin, "r" * 200)

    assert theirs.status == unknown.status == too_long.status == 404
    assert theirs.body == unknown.body == too_long.body
    assert theirs.headers == unknown.headers
    assert theirs.body["code"] == "not_found"
    assert referral_id not in str(theirs.raw)


def test_no_token_is_401(api: LifecycleApi, lambda_context: Any) -> None:
    referral_id = requested_with_deal(api, 25000)["referral_id"]
    assert get_referral(Caller(None, [], lambda_context), referral_id).status == 401


# ---------------------------------------------------------------- upgrade and closure, as read


def test_accepting_consent_upgrades_to_co_sell_when_the_customer_allows_it(api: LifecycleApi, admin: Caller) -> None:
    claim_id = api.granted()
    referral = referral_as(admin, api.claim(claim_id)["referral_id"])
    assert (referral["type"], referral["status"]) == ("co_sell", "active")


def test_no_co_sell_for_a_customer_whose_record_does_not_allow_it(api: LifecycleApi, admin: Caller) -> None:
    data = demo_json()
    (tailspin,) = [c for c in data["customers"] if c["value"] == TAILSPIN_TENANT]
    assert tailspin["cosell_allowed"] is False
    tailspin["segment"] = "SMB"  # so that e-azure-migrate accepts it
    api.load_reference({"customers": [tailspin]})
    body = add_customer_body(
        friendly_name="Tailspin migration",
        identifier={"type": "domain", "value": "tailspintoys.com"},
        customer_contact={"name": "Lee Chen", "email": "lee@tailspintoys.com", "language": "en"},
    )

    claim_id = api.granted(body)

    referral = referral_as(admin, api.claim(claim_id)["referral_id"])
    assert (referral["type"], referral["status"]) == ("partner_led", "active")
    assert referral["customer"]["identifier_value"] == TAILSPIN_TENANT


@pytest.mark.parametrize(
    ("end", "state", "kind"),
    [
        ("decline", "consent_declined", "partner_led"),
        ("cancel", "cancelled", "partner_led"),
        ("cancel granted", "cancelled", "co_sell"),
        ("complete", "completed", "co_sell"),
        ("reject", "rejected", "co_sell"),
    ],
)
def test_the_referral_closes_with_the_claims_final_state(
    api: LifecycleApi, admin: Caller, end: str, state: str, kind: str
) -> None:
    if end == "decline":
        claim_id = api.declined()
    elif end == "cancel":
        claim_id = api.add_claim()
        api.requested(claim_id)
        assert api.cancel(claim_id).status == 200
    elif end == "cancel granted":
        claim_id = api.granted()
        assert api.cancel(claim_id).status == 200
    else:
        claim_id = api.reviewed(end)
    claim = api.claim(claim_id)
    assert claim["state"] == state

    referral = referral_as(admin, claim["referral_id"])

    assert (referral["status"], referral["closed_with_state"], referral["type"]) == ("closed", state, kind)
    assert referral["updated_at"] == claim["updated_at"]


def test_the_sweep_closes_the_referral_of_an_expired_claim(api: LifecycleApi, admin: Caller, clock: FixedClock) -> None:
    claim = requested_with_deal(api, 25000)
    clock.advance(timedelta(days=31))

    assert api.sweep()["expired"] == 1

    referral = referral_as(admin, claim["referral_id"])
    assert (referral["status"], referral["closed_with_state"]) == ("closed", "expired")


def test_an_add_that_expires_an_overdue_claim_closes_its_referral(
    api: LifecycleApi, admin: Caller, clock: FixedClock, dynamodb: DynamoDBClient, lambda_context: Any
) -> None:
    claim = requested_with_deal(api, 25000)
    clock.advance(timedelta(days=31))

    northwind = Caller(NORTHWIND, ["incentives_user"], lambda_context)
    assert api.add(northwind_body(), caller=northwind).status == 201  # expires Contoso's overdue claim with it

    assert stored_claim(dynamodb, claim["claim_id"])["state"] == {"S": "expired"}
    referral = referral_as(admin, claim["referral_id"])
    assert (referral["status"], referral["closed_with_state"]) == ("closed", "expired")
