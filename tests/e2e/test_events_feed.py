"""Rule 20 on the local stack, over HTTP: a claim added and asked for consent shows up as domain events on
/_local/events.json (published by the real PublishEventsFunction from moto's stream onto the bus), and
/_local/events shows them as a page with no external assets.

The shared e2e stack is used by other tests too: this one uses a partner and customer of its own
(Northwind, Litware by TPID).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from tests.e2e.conftest import StackClient
from tests.unit.test_events import assert_valid_event

pytestmark = pytest.mark.e2e

NORTHWIND = "p-northwind-consulting"
NORTHWIND_DUBLIN = "7654321"
MIGRATE = "e-azure-migrate"
SECURITY = "e-security-workshop"
# (identifier, the contact's email domain)
LITWARE = ({"type": "tpid", "value": "100200300"}, "litware.com")
TAILSPIN = ({"type": "domain", "value": "tailspintoys.com"}, "tailspintoys.com")
EXPECTED = ["ClaimCreated", "ConsentRequested", "ReferralCreated"]
WAIT_SECONDS = 10.0


def _add_body(
    friendly_name: str, customer: tuple[dict[str, str], str] = LITWARE, engagement_id: str = MIGRATE
) -> dict[str, Any]:
    identifier, email_domain = customer
    return {
        "friendly_name": friendly_name,
        "location_id": NORTHWIND_DUBLIN,
        "identifier": identifier,
        "engagement_ids": [engagement_id],
        "customer_contact": {"name": "Olivia Smith", "email": f"olivia@{email_domain}", "language": "en"},
        "partner_contact": {"name": "Kim Ode", "email": "kim@northwind.example"},
    }


def _events(client: StackClient) -> list[dict[str, Any]]:
    answer = client.request("GET", "/_local/events.json")
    assert answer.status == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    items = answer.json()["items"]
    assert isinstance(items, list)
    return items


def _claim_and_consent(client: StackClient, token: str, friendly_name: str) -> dict[str, Any]:
    added = client.request("POST", "/customers", _add_body(friendly_name), token=token)
    assert added.status == 201, added.text
    claim_id = added.json()["claims"][0]["claim_id"]
    body = {"deal_size_usd": 25000, "disclaimer_accepted": True}
    requested = client.request("POST", f"/claims/{claim_id}/consent-requests", body, token=token)
    assert requested.status == 200, requested.text
    claim: dict[str, Any] = requested.json()
    assert claim["referral_id"], claim
    return claim


def _events_of(items: list[dict[str, Any]], claim_id: str) -> list[dict[str, Any]]:
    return [i for i in items if (i.get("detail") or {}).get("claim_id") == claim_id]


def test_a_claim_and_its_consent_request_show_up_as_events(local_stack: StackClient) -> None:
    token = local_stack.token(NORTHWIND, ["incentives_user"])
    claim = _claim_and_consent(local_stack, token, "Litware events")

    deadline = time.monotonic() + WAIT_SECONDS
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        mine = _events_of(_events(local_stack), claim["claim_id"])
        if len(mine) >= len(EXPECTED):
            break
        time.sleep(0.2)

    assert [i["detail_type"] for i in reversed(mine)] == EXPECTED, mine
    for item in mine:
        assert item["source"] == "mci.customers"
        assert_valid_event(item["detail_type"], item["detail"])
    created, requested, referral = reversed(mine)
    assert created["detail"]["to_state"] == "pending_consent"
    assert requested["detail"]["referral_id"] == claim["referral_id"] == referral["detail"]["referral_id"]
    assert referral["detail"]["deal_size_usd"] == 25000
    assert referral["detail"]["customer"] == {"identifier_type": "tpid", "identifier_value": "100200300"}
    # Newest first over the whole feed; each event once.
    items = _events(local_stack)
    times = [i["time"] for i in items]
    assert times == sorted(times, reverse=True)
    ids = [i["detail"]["event_id"] for i in items]
    assert len(ids) == len(set(ids))
    # The referral the events announce, as its referral_admin reads it.
    admin = local_stack.token(NORTHWIND, ["referral_admin"])
    read = local_stack.request("GET", f"/referrals/{claim['referral_id']}", token=admin)
    assert read.status == 200, read.text
    assert (read.json()["type"], read.json()["status"]) == ("partner_led", "active")


def test_the_events_page_lists_them_with_no_external_assets(local_stack: StackClient) -> None:
    token = local_stack.token(NORTHWIND, ["incentives_user"])
    # Another customer and engagement than the test above: the shared stack keeps every claim.
    added = local_stack.request("POST", "/customers", _add_body("Tailspin page", TAILSPIN, SECURITY), token=token)
    assert added.status == 201, added.text
    claim_id = added.json()["claims"][0]["claim_id"]

    page = local_stack.request("GET", "/_local/events")

    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert claim_id in page.text
    assert "ClaimCreated" in page.text
    assert not re.search(r"<script|<link|<img|src=|https?://", page.text)


# ---------------------------------------------------------------- the poller in a stack of its own (in process)


def _local_stack(monkeypatch: pytest.MonkeyPatch, poll_seconds: str) -> Any:
    from moto.moto_api._internal.models import moto_api_backend

    from local.stack import LocalStack

    # moto's backends are this process's globals and outlive a stopped stack: start from empty tables.
    moto_api_backend.reset()
    monkeypatch.setenv("LOCAL_EVENTS_POLL_SECONDS", poll_seconds)
    monkeypatch.setenv("LOCAL_SWEEP_SECONDS", "0")
    return LocalStack(port=0)


def test_the_background_poller_publishes_without_anyone_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    from local import events_feed

    with _local_stack(monkeypatch, "0.2") as stack:
        client = StackClient(stack.url)
        token = client.token(NORTHWIND, ["incentives_user"])
        claim = _claim_and_consent(client, token, "Litware in the background")
        feed = events_feed.feed_of(stack)
        assert feed is not None
        assert feed.running
        deadline = time.monotonic() + WAIT_SECONDS
        mine: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(mine) < len(EXPECTED):
            mine = _events_of(feed.items(), claim["claim_id"])  # no GET: only the thread refreshes
            time.sleep(0.1)
        assert [i["detail_type"] for i in reversed(mine)] == EXPECTED
    assert events_feed.feed_of(stack) is not None
    assert not any(thread.name == "local-events" and thread.is_alive() for thread in threading.enumerate())


def test_with_polling_off_reading_the_feed_publishes_what_is_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    from local import events_feed

    with _local_stack(monkeypatch, "0") as stack:
        feed = events_feed.feed_of(stack)
        assert feed is not None
        assert not feed.running
        client = StackClient(stack.url)
        token = client.token(NORTHWIND, ["incentives_user"])
        claim = _claim_and_consent(client, token, "Litware on demand")
        assert _events_of(feed.items(), claim["claim_id"]) == []  # nothing polled yet

        mine = _events_of(_events(client), claim["claim_id"])  # reading polls first

        assert [i["detail_type"] for i in reversed(mine)] == EXPECTED


@pytest.mark.parametrize(("value", "seconds"), [("", 1.0), ("0", 0.0), ("0.5", 0.5), ("-2", 1.0), ("often", 1.0)])
def test_poll_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, seconds: float) -> None:
    from local.events_feed import interval_from_environment

    monkeypatch.setenv("LOCAL_EVENTS_POLL_SECONDS", value)
    assert interval_from_environment() == seconds
