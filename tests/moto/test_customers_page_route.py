"""GET /engagements/{engagement_id}/customers through the real handler on moto (rules 17, 21-24)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from local.moto_patches import lean_moto
from tests.support.api import Answer, Caller
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.numbered_customers import numbered_body, numbered_customers
from tests.support.reference import (
    AI,
    CONTOSO,
    FABRIKAM_TENANT,
    MIGRATE,
    NORTHWIND,
    NORTHWIND_DUBLIN,
    SECURITY,
    TAILSPIN_TENANT,
    WIDEWORLD_TENANT,
    add_customer_body,
)
from tests.support.store_snapshots import TableSnapshot, assert_all_counters_match

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
PROSEWARE_SUBSCRIPTION = "9a8b7c6d-0000-4000-8000-00000000000a"


@pytest.fixture(autouse=True)
def lean_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    lean_moto(monkeypatch)


@pytest.fixture(autouse=True)
def counters_match_claims(dynamodb: DynamoDBClient) -> Iterator[None]:
    """Rule 11 after every test: each stored counter equals the stored active claims it counts."""
    yield
    assert_all_counters_match(TableSnapshot(dynamodb))


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> LifecycleApi:
    made = lifecycle_api(lambda_context)
    made.load_reference(numbered_customers(range(1, 41)))
    return made


@pytest.fixture
def northwind(lambda_context: Any) -> Caller:
    return Caller(NORTHWIND, ["incentives_user"], lambda_context)


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    assert (answer.body["status"], answer.body["code"]) == (status, code), answer.body
    assert "items" not in answer.body


def page(api: LifecycleApi, engagement_id: str, tab: str | None = None, **kwargs: Any) -> dict[str, Any]:
    answer = api.customers(engagement_id, tab, **kwargs)
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.body
    return body


def walk(api: LifecycleApi, engagement_id: str, tab: str, limit: int, caller: Caller | None = None) -> list[list[Any]]:
    """Every page of a tab, following next_cursor until it is null."""
    pages: list[list[Any]] = []
    cursor = None
    for _ in range(100):
        answer = api.customers(engagement_id, tab, cursor=cursor, limit=limit, caller=caller)
        assert answer.status == 200, answer.body
        assert len(answer.body["items"]) <= limit
        pages.append(answer.body["items"])
        cursor = answer.body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("next_cursor never became null")


def claim_ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["claim_id"] for i in items]


# ---------------------------------------------------------------- the three tabs (rules 21-23)


def known_customers_world(api: LifecycleApi, clock: FixedClock) -> dict[str, str]:
    """Four known customers of Contoso (each by a real consent acceptance) and two claims in Azure Migrate.

    Wide World, Tailspin (ENT) and Proseware (subscription id) consent on Security workshop claims;
    Fabrikam consents on an Azure Migrate claim; Litware (TPID) is added to Azure Migrate, pending.
    """
    claims = {
        "wideworld": api.granted(
            add_customer_body(
                friendly_name="Wide World rollout",
                identifier={"type": "domain", "value": "wideworldimporters.com"},
                engagement_ids=[SECURITY],
                customer_contact={"name": "Ola", "email": "ola@wideworldimporters.com"},
            )
        )
    }
    clock.advance(HOUR)
    claims["tailspin"] = api.granted(
        add_customer_body(
            friendly_name="Tailspin hardening",
            identifier={"type": "domain", "value": "tailspintoys.com"},
            engagement_ids=[SECURITY],
            customer_contact={"name": "Tom", "email": "tom@tailspintoys.com"},
        )
    )
    clock.advance(HOUR)
    claims["proseware"] = api.granted(
        add_customer_body(
            friendly_name="Proseware review",
            identifier={"type": "subscription_id", "value": PROSEWARE_SUBSCRIPTION},
            engagement_ids=[SECURITY],
            customer_contact={"name": "Pia", "email": "pia@proseware.example"},
        )
    )
    clock.advance(HOUR)
    claims["fabrikam"] = api.granted()
    clock.advance(HOUR)
    claims["litware"] = api.add_claim(
        add_customer_body(
            friendly_name="Litware assessment",
            identifier={"type": "tpid", "value": "100200300"},
            customer_contact={"name": "Lu", "email": "lu@litware.com"},
        )
    )
    return claims


def test_eligible_lists_active_claims_newest_first_then_eligible_known_customers(
    api: LifecycleApi, clock: FixedClock
) -> None:
    claims = known_customers_world(api, clock)
    clock.advance(HOUR)
    items = page(api, MIGRATE)["items"]  # eligible is the default tab
    assert [(i["kind"], i["claim_id"], i["customer_id"]) for i in items] == [
        ("claim", claims["litware"], None),
        ("claim", claims["fabrikam"], None),  # Fabrikam is known too, but listed once, as its claim
        ("known_customer", None, f"tenant_id:{WIDEWORLD_TENANT}"),
    ]
    litware, fabrikam, wideworld = items
    assert litware == {
        "kind": "claim",
        "claim_id": claims["litware"],
        "customer_id": None,
        "friendly_name": "Litware assessment",
        "customer": {"type": "tpid", "value": "100200300"},
        "state": "pending_consent",
        "deadline": "2026-12-27T14:00:00Z",
        "days_left": 29,
        "actions": ["send_consent", "cancel"],
        "reasons": [],
        "consent_email_status": None,  # no consent email yet (rule 29: "rejected" when SES refused it)
    }
    assert fabrikam["state"] == "consent_granted"
    assert fabrikam["customer"] == {"type": "domain", "value": "fabrikam.com"}
    assert fabrikam["deadline"] == api.claim(claims["fabrikam"])["submission_deadline"] == "2027-02-25T13:00:00Z"
    assert fabrikam["days_left"] == 89
    assert fabrikam["actions"] == ["submit", "cancel"]
    assert wideworld["friendly_name"] == "Wide World rollout"
    assert wideworld["customer"] == {"type": "tenant_id", "value": WIDEWORLD_TENANT}
    assert wideworld["actions"] == ["claim_customer"]
    assert (wideworld["state"], wideworld["reasons"]) == (None, [])
    assert page(api, MIGRATE, "eligible") == page(api, MIGRATE)
    # the action works: claiming Wide World makes it a claim of the tab
    claimed = api.claim_customer(
        wideworld["customer_id"],
        {"friendly_name": "Wide World migrate", "location_id": "1234567", "engagement_ids": [MIGRATE]},
    )
    assert claimed.status == 201, claimed.body
    after = page(api, MIGRATE)["items"]
    assert (after[0]["kind"], after[0]["friendly_name"]) == ("claim", "Wide World migrate")
    assert all(i["kind"] == "claim" for i in after)


def test_ineligible_lists_known_customers_that_are_not_eligible_with_reasons(
    api: LifecycleApi, clock: FixedClock, northwind: Caller
) -> None:
    known_customers_world(api, clock)
    items = page(api, MIGRATE, "ineligible")["items"]
    assert [(i["kind"], i["customer_id"]) for i in items] == [
        ("known_customer", f"subscription_id:{PROSEWARE_SUBSCRIPTION}"),  # newest known first
        ("known_customer", f"tenant_id:{TAILSPIN_TENANT}"),
    ]
    proseware, tailspin = items
    assert [r["code"] for r in proseware["reasons"]] == ["identifier_type_not_accepted"]
    assert [r["code"] for r in tailspin["reasons"]] == ["criteria_not_met"]
    assert "segments" in tailspin["reasons"][0]["message"]
    assert "ENT" in tailspin["reasons"][0]["message"]
    assert proseware["actions"] == tailspin["actions"] == []
    assert proseware["claim_id"] is None
    # Fabrikam is blocked in the Security workshop only by Northwind's active claim (limit 1)
    security = page(api, SECURITY)["items"]
    assert f"tenant_id:{FABRIKAM_TENANT}" in [i["customer_id"] for i in security]
    taken = api.add(add_customer_body(location_id=NORTHWIND_DUBLIN, engagement_ids=[SECURITY]), caller=northwind)
    assert taken.status == 201, taken.body
    blocked = page(api, SECURITY, "ineligible")["items"]
    assert [(i["customer_id"], [r["code"] for r in i["reasons"]]) for i in blocked] == [
        (f"tenant_id:{FABRIKAM_TENANT}", ["active_claim_limit_reached"])
    ]
    assert taken.body["claims"][0]["claim_id"] not in json.dumps(blocked)
    assert f"tenant_id:{FABRIKAM_TENANT}" not in [i["customer_id"] for i in page(api, SECURITY)["items"]]
    # once Northwind's claim ends, Fabrikam is eligible again
    assert api.cancel(taken.body["claims"][0]["claim_id"], caller=northwind).status == 200
    assert page(api, SECURITY, "ineligible")["items"] == []
    again = [i for i in page(api, SECURITY)["items"] if i["customer_id"] == f"tenant_id:{FABRIKAM_TENANT}"]
    assert [i["actions"] for i in again] == [["claim_customer"]]


def test_an_msx_only_engagement_lists_no_ineligible_customers_only_a_note(api: LifecycleApi, clock: FixedClock) -> None:
    known_customers_world(api, clock)
    assert len(page(api, SECURITY, "ineligible")["items"]) == 0
    assert len(page(api, MIGRATE, "ineligible")["items"]) == 2  # known customers exist, and AI accepts none of them
    body = page(api, AI, "ineligible")
    assert body["items"] == []
    assert body["next_cursor"] is None
    assert body["note"]
    assert "MSX" in body["note"]
    assert page(api, AI)["items"] == []  # none of them is eligible either


def test_complete_lists_ended_claims_newest_first_including_lapsed_ones(
    api: LifecycleApi, clock: FixedClock, dynamodb: DynamoDBClient
) -> None:
    made: dict[str, str] = {}
    made["expired"] = api.add_claim(numbered_body(1, MIGRATE))
    clock.advance(DAY)
    made["lapsed"] = api.add_claim(numbered_body(2, MIGRATE))
    clock.advance(29 * DAY)
    assert api.sweep()["expired"] == 1  # the first one, stored as expired
    clock.advance(DAY)  # the second one is past its deadline now, not swept
    clock.advance(HOUR)
    made["cancelled"] = api.add_claim(numbered_body(3, MIGRATE))
    assert api.cancel(made["cancelled"]).status == 200
    clock.advance(HOUR)
    made["consent_declined"] = api.declined(numbered_body(4, MIGRATE))
    clock.advance(HOUR)
    made["completed"] = api.reviewed("complete", numbered_body(5, MIGRATE))
    clock.advance(HOUR)
    made["rejected"] = api.reviewed("reject", numbered_body(6, MIGRATE))
    clock.advance(HOUR)
    made["pending"] = api.add_claim(numbered_body(7, MIGRATE))
    clock.advance(HOUR)
    made["granted"] = api.granted(numbered_body(8, MIGRATE))
    complete = page(api, MIGRATE, "complete")
    assert [(i["claim_id"], i["state"]) for i in complete["items"]] == [
        (made["rejected"], "rejected"),
        (made["completed"], "completed"),
        (made["consent_declined"], "consent_declined"),
        (made["cancelled"], "cancelled"),
        (made["lapsed"], "expired"),
        (made["expired"], "expired"),
    ]
    assert complete["next_cursor"] is None
    assert all(i["actions"] == [] and i["days_left"] is None for i in complete["items"])
    eligible = page(api, MIGRATE)["items"]
    assert [i["claim_id"] for i in eligible if i["kind"] == "claim"] == [made["granted"], made["pending"]]
    stored = {c.claim_id: c.state.value for c in TableSnapshot(dynamodb).claims}
    assert stored[made["lapsed"]] == "pending_consent"  # shown as expired, not yet written


# ---------------------------------------------------------------- actions, deadlines, days left


def test_each_item_carries_the_actions_its_claim_allows_now(api: LifecycleApi, clock: FixedClock) -> None:
    pending = api.add_claim(numbered_body(1, MIGRATE))
    requested = api.add_claim(numbered_body(2, MIGRATE))
    api.requested(requested)
    granted = api.granted(numbered_body(3, MIGRATE))
    submitted = api.submitted(numbered_body(4, MIGRATE))

    def actions() -> dict[str, list[str]]:
        return {i["claim_id"]: i["actions"] for i in page(api, MIGRATE)["items"]}

    assert actions() == {
        pending: ["send_consent", "cancel"],
        requested: ["cancel"],  # resending waits an hour
        granted: ["submit", "cancel"],
        submitted: [],
    }
    clock.advance(HOUR)
    assert actions()[requested] == ["resend_consent", "cancel"]
    for _ in range(5):
        assert api.request(requested, {}).status == 200
        clock.advance(HOUR)
    assert actions()[requested] == ["cancel"]  # five resends used
    assert api.request(requested, {}).status == 409


def test_deadline_and_days_left_follow_the_deadline_that_matters(api: LifecycleApi, clock: FixedClock) -> None:
    pending = api.add_claim(numbered_body(1, MIGRATE))
    granted = api.granted(numbered_body(2, MIGRATE))

    def item(claim_id: str) -> dict[str, Any]:
        [found] = [i for i in page(api, MIGRATE)["items"] if i["claim_id"] == claim_id]
        return found

    assert (item(pending)["deadline"], item(pending)["days_left"]) == ("2026-12-27T10:00:00Z", 30)
    assert (item(granted)["deadline"], item(granted)["days_left"]) == ("2027-02-25T10:00:00Z", 90)
    clock.advance(10 * DAY)
    assert (item(pending)["deadline"], item(pending)["days_left"]) == ("2026-12-27T10:00:00Z", 20)
    assert item(granted)["days_left"] == 80
    clock.advance(20 * DAY - timedelta(seconds=1))
    assert (item(pending)["state"], item(pending)["days_left"]) == ("pending_consent", 0)
    clock.advance(timedelta(seconds=1))
    assert pending not in claim_ids(page(api, MIGRATE)["items"])
    assert claim_ids(page(api, MIGRATE, "complete")["items"]) == [pending]


# ---------------------------------------------------------------- pages (rule 24)


def add_thirty(api: LifecycleApi, clock: FixedClock) -> list[str]:
    """Thirty claims of thirty customers in Azure Migrate, one every twelve hours; oldest first."""
    made = []
    for n in range(1, 31):
        made.append(api.add_claim(numbered_body(n, MIGRATE)))
        clock.advance(12 * HOUR)
    return made


def assert_walk(pages: list[list[Any]], expected_newest_first: list[str], limit: int) -> None:
    seen = [i["claim_id"] for items in pages for i in items]
    assert len(seen) == len(set(seen)), "an item shown twice"
    assert seen == expected_newest_first  # no gaps, newest first
    assert all(len(items) == limit for items in pages[:-1] if items)


def test_walking_the_pages_shows_every_claim_once_newest_first(api: LifecycleApi, clock: FixedClock) -> None:
    made = add_thirty(api, clock)
    pages = walk(api, MIGRATE, "eligible", 7)
    assert [len(items) for items in pages] == [7, 7, 7, 7, 2]
    assert_walk(pages, made[::-1], 7)
    assert walk(api, MIGRATE, "complete", 7) == [[]]
    # the default page is 25, the largest 100
    first = page(api, MIGRATE)
    assert len(first["items"]) == 25
    assert first["next_cursor"] is not None
    rest = page(api, MIGRATE, "eligible", cursor=first["next_cursor"])
    assert claim_ids(first["items"]) + claim_ids(rest["items"]) == made[::-1]
    assert rest["next_cursor"] is None
    everything = page(api, MIGRATE, "eligible", limit=100)
    assert (claim_ids(everything["items"]), everything["next_cursor"]) == (made[::-1], None)


def test_walking_both_tabs_after_cancelling_and_lapsing(api: LifecycleApi, clock: FixedClock) -> None:
    """Ended claims live in another index partition than active ones; lapsed ones move tab before the sweep."""
    made = add_thirty(api, clock)
    cancelled = set(made[2::3])
    for claim_id in cancelled:
        assert api.cancel(claim_id).status == 200
    clock.advance(timedelta(days=18, hours=18))  # now NOW + 33d18h: the eight made before NOW + 3d18h lapsed
    lapsed = set(made[:8])
    live = [c for c in made[::-1] if c not in cancelled and c not in lapsed]
    ended = [c for c in made[::-1] if c in cancelled or c in lapsed]
    assert (len(live), len(ended)) == (14, 16)
    for limit in (7, 16):
        assert_walk(walk(api, MIGRATE, "eligible", limit), live, limit)
        assert_walk(walk(api, MIGRATE, "complete", limit), ended, limit)


def test_a_next_cursor_never_leads_to_an_empty_page(api: LifecycleApi, clock: FixedClock) -> None:
    made = add_thirty(api, clock)
    for claim_id in made[2::3]:
        assert api.cancel(claim_id).status == 200
    clock.advance(timedelta(days=18, hours=18))  # the eight oldest lapsed, six of them still active
    pages = walk(api, MIGRATE, "eligible", 7)
    assert [len(items) for items in pages] == [7, 7]


def test_a_limit_outside_one_to_a_hundred_is_refused(api: LifecycleApi) -> None:
    api.add_claim()
    for limit in ("0", "101", "-1", "seven", "1.5", "", "1e2"):
        answer = api.customers(MIGRATE, "eligible", limit=limit)
        assert_problem(answer, 422, "validation_error")
        assert [e["field"] for e in answer.body["errors"]] == ["limit"], limit
    for limit in ("1", "100"):
        assert len(page(api, MIGRATE, "eligible", limit=limit)["items"]) == 1


def test_a_cursor_works_only_for_the_partner_engagement_and_tab_it_was_issued_for(
    api: LifecycleApi, clock: FixedClock, northwind: Caller
) -> None:
    made = add_thirty(api, clock)
    for claim_id in made[:3]:
        api.cancel(claim_id)
    for n in range(1, 11):
        theirs = numbered_body(n, SECURITY, location_id=NORTHWIND_DUBLIN)
        assert api.add(theirs, caller=northwind).status == 201
    first = page(api, MIGRATE, "eligible", limit=7)
    cursor = first["next_cursor"]
    contoso_ids = set(made)
    refused = {
        "another partner": api.customers(MIGRATE, "eligible", cursor=cursor, limit=7, caller=northwind),
        "another engagement": api.customers(SECURITY, "eligible", cursor=cursor, limit=7),
        "another tab": api.customers(MIGRATE, "complete", cursor=cursor, limit=7),
        "the ineligible tab": api.customers(MIGRATE, "ineligible", cursor=cursor, limit=7),
    }
    for name, answer in refused.items():
        assert_problem(answer, 422, "validation_error")
        assert [e["field"] for e in answer.body["errors"]] == ["cursor"], name
        assert not any(claim_id in json.dumps(answer.body) for claim_id in contoso_ids), name
    # Northwind's own pages never show Contoso's claims, with or without a cursor
    theirs = walk(api, SECURITY, "eligible", 3, caller=northwind)
    assert sum(len(items) for items in theirs) == 10
    assert not contoso_ids & {i["claim_id"] for items in theirs for i in items}
    assert walk(api, MIGRATE, "eligible", 7, caller=northwind) == [[]]
    # the cursor still works for Contoso
    assert page(api, MIGRATE, "eligible", cursor=cursor, limit=7)["items"]


def forged(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def signed_elsewhere(*values: Any) -> str:
    """A well-formed cursor, signed as the service signs them but with a key that is not the service's."""
    payload = forged(*values)
    signature = hmac.new(b"another key, not the service's one", payload.encode(), hashlib.sha256).digest()
    return payload + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")


def test_a_cursor_the_service_did_not_issue_is_refused(api: LifecycleApi, clock: FixedClock) -> None:
    """Rule 31: well formed is not enough; only a cursor the service signed is ever parsed."""
    for n in (1, 2):
        api.add_claim(numbered_body(n, MIGRATE))
        clock.advance(HOUR)
    issued = page(api, MIGRATE, "eligible", limit=1)["next_cursor"]
    payload, _, signature = issued.rpartition(".")
    assert page(api, MIGRATE, "eligible", cursor=issued, limit=1)["items"]
    for cursor in (
        # well formed, the caller's own partner, engagement and tab, but never signed (the 500 of issue 12.2)
        forged(CONTOSO, MIGRATE, "eligible", "claims", ""),
        forged(CONTOSO, MIGRATE, "eligible", "claims", "9999-12-31T00:00:00.000000Z#x"),
        forged(CONTOSO, MIGRATE, "eligible", "known", ""),
        # signed with another key, and an issued cursor with its signature or its payload changed
        signed_elsewhere(CONTOSO, MIGRATE, "eligible", "claims", ""),
        payload + "." + signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB"),
        payload + ".",
        payload,
        forged(CONTOSO, MIGRATE, "eligible", "claims", "") + "." + signature,
        issued + "x",
        "garbage",
        "!!!",
        "e30",  # {}
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        forged(CONTOSO, MIGRATE, "eligible"),
        forged(CONTOSO, MIGRATE, "everything", "claims", "z"),
        forged(NORTHWIND, MIGRATE, "eligible", "claims", "z"),
        forged([CONTOSO], MIGRATE, "eligible", "claims", "z"),
        "A" * 2001,
    ):
        answer = api.customers(MIGRATE, "eligible", cursor=cursor)
        assert_problem(answer, 422, "validation_error")
        assert [e["field"] for e in answer.body["errors"]] == ["cursor"], cursor


def test_the_page_needs_an_incentives_role_a_known_engagement_and_a_known_tab(
    api: LifecycleApi, lambda_context: Any
) -> None:
    api.add_claim()
    assert_problem(api.customers(MIGRATE, caller=Caller(CONTOSO, ["referral_admin"], lambda_context)), 403, "forbidden")
    assert_problem(api.customers("e-no-such-engagement"), 404, "not_found")
    answer = api.customers(MIGRATE, "all")
    assert_problem(answer, 422, "validation_error")
    assert [e["field"] for e in answer.body["errors"]] == ["tab"]
