"""GET /attention-items through the real handler on moto: the partner's waiting claims, soonest deadline first."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from local.moto_patches import lean_moto
from tests.support.api import Caller
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.numbered_customers import numbered_body, numbered_customers
from tests.support.reference import CONTOSO, MIGRATE, NORTHWIND, NORTHWIND_DUBLIN, SECURITY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def lean_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    lean_moto(monkeypatch)


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> LifecycleApi:
    made = lifecycle_api(lambda_context)
    made.load_reference(numbered_customers(range(1, 11)))
    return made


def test_reasons_order_pages_and_expiry_through_the_route(
    api: LifecycleApi, clock: FixedClock, lambda_context: Any
) -> None:
    pending = api.add(numbered_body(1, SECURITY)).body["claims"][0]["claim_id"]
    clock.advance(HOUR)
    granted = api.granted(numbered_body(2, MIGRATE))
    clock.advance(HOUR)
    requested = api.add(numbered_body(3, MIGRATE)).body["claims"][0]["claim_id"]
    api.requested(requested)
    northwind = Caller(NORTHWIND, ["incentives_user"], lambda_context)
    theirs = northwind.post("/customers", numbered_body(4, MIGRATE, location_id=NORTHWIND_DUBLIN))
    assert theirs.status == 201, theirs.body
    theirs_id = theirs.body["claims"][0]["claim_id"]
    northwinds = northwind.get("/attention-items")
    assert [i["claim_id"] for i in northwinds.body["items"]] == [theirs_id]

    first = api.attention(limit=1)
    assert first.status == 200, first.body
    [item] = first.body["items"]
    assert item == {
        "claim_id": pending,
        "engagement_id": SECURITY,
        "engagement_name": "Security workshop",
        "friendly_name": item["friendly_name"],
        "identifier": item["identifier"],
        "state": "pending_consent",
        "reason": "consent_not_requested",
        "deadline": item["deadline"],
        "days_left": 29,
    }
    second = api.attention(cursor=first.body["next_cursor"], limit=1).body
    assert [(i["claim_id"], i["reason"]) for i in second["items"]] == [(granted, "not_submitted")]
    assert second["next_cursor"] is None  # the requested claim's deadline is 30 days away: not yet listed

    clock.advance(23 * DAY)  # the requested claim's consent deadline is now exactly 7 days away
    listed = [(i["claim_id"], i["reason"]) for i in api.attention().body["items"]]
    assert listed == [
        (pending, "consent_not_requested"),
        (requested, "consent_deadline_soon"),
        (granted, "not_submitted"),
    ]
    assert theirs_id not in str(listed)
    clock.advance(7 * DAY)  # past the first claim's consent deadline: expired on read, before any sweep
    listed = [(i["claim_id"], i["reason"]) for i in api.attention().body["items"]]
    assert listed == [(granted, "not_submitted")]


def test_bad_query_is_a_422_naming_the_field(api: LifecycleApi) -> None:
    for query, field in (({"cursor": "forged.cursor"}, "cursor"), ({"limit": 0}, "limit"), ({"limit": "x"}, "limit")):
        answer = api.attention(**query)  # type: ignore[arg-type]
        assert answer.status == 422, answer.body
        assert answer.headers["content-type"] == "application/problem+json"
        assert field in str(answer.body["errors"]), answer.body


def test_only_incentives_roles_read_it(api: LifecycleApi, lambda_context: Any) -> None:
    referral_admin = Caller(CONTOSO, ["referral_admin"], lambda_context)
    answer = referral_admin.get("/attention-items")
    assert answer.status == 403, answer.body
