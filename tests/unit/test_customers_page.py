"""Rules 21-24 (and 17) on the in-memory fakes: the Customers page's tabs, items, cursors and pages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from mci.domain.claims import Claim, ClaimState, Decision
from mci.domain.customers_page import (
    DEFAULT_PAGE,
    MAX_PAGE,
    Action,
    Cursor,
    CustomersPage,
    CustomersPageQuery,
    PageItem,
    Tab,
    actions_for,
)
from mci.domain.errors import DomainError, Forbidden, NotFound, ValidationFailed
from mci.domain.principal import Principal
from mci.domain.reference import ReferenceData
from tests.support.consent import principal, token_in
from tests.support.memory_lifecycle import MemoryLifecycle
from tests.support.numbered_customers import numbered_customers, numbered_key
from tests.support.reference import AI, CONTOSO, MIGRATE, NORTHWIND, NOW, SECURITY
from tests.support.store_snapshots import assert_all_counters_match

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
ENTERPRISE = range(200, 205)  # customers in the ENT segment: not eligible for Azure Migrate


@pytest.fixture
def world() -> Iterator[MemoryLifecycle]:
    made = MemoryLifecycle()
    made.reference.save(ReferenceData.model_validate(numbered_customers(ENTERPRISE, segment="ENT")))
    yield made
    assert_all_counters_match(made.view)  # rule 11 after every test: each counter equals its active claims


def refused(call: Callable[[], Any], error: type[DomainError]) -> Any:
    with pytest.raises(error) as caught:
        call()
    return caught.value


def page(
    world: MemoryLifecycle,
    tab: Tab = Tab.ELIGIBLE,
    engagement_id: str = MIGRATE,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
    partner_id: str = CONTOSO,
) -> CustomersPage:
    return world.page.page(principal(partner_id), engagement_id, tab, cursor, limit)


def walk(world: MemoryLifecycle, tab: Tab, limit: int, engagement_id: str = MIGRATE) -> list[list[PageItem]]:
    pages: list[list[PageItem]] = []
    cursor = None
    for _ in range(500):
        found = page(world, tab, engagement_id, cursor, limit)
        assert len(found.items) <= limit
        pages.append(found.items)
        cursor = found.next_cursor
        if cursor is None:
            return pages
    raise AssertionError("next_cursor never became null")


def ids(items: list[PageItem]) -> list[str]:
    return [i.claim.claim_id if i.claim else f"known:{i.customer_id}" for i in items]


def known(world: MemoryLifecycle, n: int) -> Claim:
    """Make customer ``n`` known to Contoso: a Security workshop claim, consented."""
    claim = world.numbered(n, SECURITY)
    return world.accept(claim.claim_id)


# ---------------------------------------------------------------- the cursor


KEY = b"unit-cursor-signing-key-not-a-secret"


def decode(text: str, *, key: bytes = KEY, partner_id: str = CONTOSO, engagement_id: str = MIGRATE) -> Cursor:
    return Cursor.decode(text, key=key, partner_id=partner_id, engagement_id=engagement_id, tab=Tab.ELIGIBLE)


def test_a_cursor_round_trips_and_is_opaque() -> None:
    cursor = Cursor(CONTOSO, MIGRATE, Tab.COMPLETE, "claims", "2026-11-27T10:00:00.000000Z#claim-1")
    text = cursor.encode(KEY)
    assert CONTOSO not in text
    assert "=" not in text
    assert Cursor.decode(text, key=KEY, partner_id=CONTOSO, engagement_id=MIGRATE, tab=Tab.COMPLETE) == cursor


@pytest.mark.parametrize(
    ("partner_id", "engagement_id", "tab"),
    [(NORTHWIND, MIGRATE, Tab.ELIGIBLE), (CONTOSO, SECURITY, Tab.ELIGIBLE), (CONTOSO, MIGRATE, Tab.COMPLETE)],
)
def test_a_cursor_is_refused_for_another_partner_engagement_or_tab(
    partner_id: str, engagement_id: str, tab: Tab
) -> None:
    text = Cursor(CONTOSO, MIGRATE, Tab.ELIGIBLE, "claims", "x").encode(KEY)
    error = refused(
        lambda: Cursor.decode(text, key=KEY, partner_id=partner_id, engagement_id=engagement_id, tab=tab),
        ValidationFailed,
    )
    assert [e.field for e in error.errors] == ["cursor"]


def encoded(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def signed(value: Any, key: bytes = KEY) -> str:
    """``value`` as the service would sign it with ``key``: a cursor only a holder of ``key`` can make."""
    payload = encoded(value).rstrip("=")
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return payload + "." + base64.urlsafe_b64encode(digest).decode().rstrip("=")


ISSUED = Cursor(CONTOSO, MIGRATE, Tab.ELIGIBLE, "claims", "2026-11-27T10:00:00.000000Z#claim-1").encode(KEY)
OWN_PAGE = [CONTOSO, MIGRATE, "eligible", "claims", ""]  # valid structure, the caller's own page, never issued


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "!!!",
        "",
        encoded({"partner": CONTOSO}),
        encoded([CONTOSO, MIGRATE]),
        encoded([CONTOSO, MIGRATE, "nope", "claims", "x"]),
        encoded(7),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
        # well formed, unsigned or signed with another key (rule 31)
        encoded(OWN_PAGE),
        encoded(OWN_PAGE).rstrip("=") + ".",
        signed(OWN_PAGE, key=b"another-key-that-is-not-the-services"),
        # an issued cursor with its signature or its payload changed
        ISSUED[:-1] + ("A" if ISSUED[-1] != "A" else "B"),
        ISSUED.rpartition(".")[0],
        encoded(OWN_PAGE).rstrip("=") + "." + ISSUED.rpartition(".")[2],
        ISSUED + ".",
        "." + ISSUED,
        ISSUED.replace(".", ".é"),
    ],
)
def test_a_cursor_the_service_did_not_issue_is_refused(text: str) -> None:
    error = refused(lambda: decode(text), ValidationFailed)
    assert (error.status, [e.field for e in error.errors]) == (422, ["cursor"])


def test_only_a_signature_with_the_services_key_is_a_cursor() -> None:
    assert decode(signed(OWN_PAGE)) == Cursor(CONTOSO, MIGRATE, Tab.ELIGIBLE, "claims", "")
    assert decode(ISSUED).position == "2026-11-27T10:00:00.000000Z#claim-1"
    refused(lambda: decode(ISSUED, key=b"another-key-that-is-not-the-services"), ValidationFailed)


def test_the_page_needs_a_real_signing_key(world: MemoryLifecycle) -> None:
    with pytest.raises(ValueError, match="signing key"):
        CustomersPageQuery(reference=world.reference, claims=world.claims, now=world.clock.now, cursor_key=b"")


def test_a_page_refuses_a_cursor_of_another_partner_and_shows_nothing(world: MemoryLifecycle) -> None:
    for n in range(5):
        world.numbered(n)
    first = page(world, limit=2)
    assert first.next_cursor is not None
    error = refused(lambda: page(world, cursor=first.next_cursor, limit=2, partner_id=NORTHWIND), ValidationFailed)
    assert [e.field for e in error.errors] == ["cursor"]
    assert page(world, partner_id=NORTHWIND).items == []


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE + 1, 10_000])
def test_a_page_holds_one_to_a_hundred_items(world: MemoryLifecycle, limit: int) -> None:
    error = refused(lambda: page(world, limit=limit), ValidationFailed)
    assert [e.field for e in error.errors] == ["limit"]
    assert (DEFAULT_PAGE, MAX_PAGE) == (25, 100)


def test_the_page_needs_an_incentives_role_and_a_known_engagement(world: MemoryLifecycle) -> None:
    for roles in ({"referral_admin"}, {"mci_operations"}, set()):
        who = Principal(CONTOSO, frozenset(roles), "u")
        refused(lambda w=who: world.page.page(w, MIGRATE, Tab.ELIGIBLE, None, 25), Forbidden)
    refused(lambda: page(world, engagement_id="e-no-such-engagement"), NotFound)


# ---------------------------------------------------------------- the tabs (rules 21-23)


def test_eligible_shows_active_claims_newest_first_then_eligible_known_customers(world: MemoryLifecycle) -> None:
    known(world, 100)  # known, no claim in Azure Migrate: eligible
    world.at(NOW + HOUR)
    known(world, 200)  # known, ENT: not eligible for Azure Migrate
    world.at(NOW + 2 * HOUR)
    known(world, 101)
    world.at(NOW + 3 * HOUR)
    own = world.numbered(101)  # known and claimed: shown once, as the claim
    world.at(NOW + 4 * HOUR)
    fresh = world.numbered(1)
    items = page(world).items
    assert ids(items) == [fresh.claim_id, own.claim_id, f"known:{numbered_key(100)}"]
    assert [i.kind for i in items] == ["claim", "claim", "known_customer"]
    assert items[2].actions == [Action.CLAIM_CUSTOMER]
    assert items[2].friendly_name == "Customer 100 project"
    assert (items[2].identifier_type, items[2].identifier_value) == ("tenant_id", numbered_key(100).partition(":")[2])
    assert items[2].reasons == []
    ineligible = page(world, Tab.INELIGIBLE).items
    assert ids(ineligible) == [f"known:{numbered_key(200)}"]
    assert [r.code.value for r in ineligible[0].reasons] == ["criteria_not_met"]
    assert ineligible[0].actions == []
    assert page(world, Tab.COMPLETE).items == []


def test_ineligible_lists_no_customer_of_an_msx_only_engagement_only_a_note(world: MemoryLifecycle) -> None:
    known(world, 100)
    known(world, 200)
    assert len(page(world, Tab.INELIGIBLE).items) == 1
    found = page(world, Tab.INELIGIBLE, AI)
    assert (found.items, found.next_cursor) == ([], None)
    assert found.note
    assert page(world, Tab.ELIGIBLE, AI).items == []  # tenant ids are not accepted there either
    assert page(world, Tab.INELIGIBLE, SECURITY).note is None


def test_a_customer_blocked_by_another_partners_claim_is_ineligible_with_that_reason(world: MemoryLifecycle) -> None:
    known(world, 100)
    known(world, 101)
    world.cancel(world.claims.claims["claim-0001"].claim_id)  # customer 100's Security claim ends
    theirs = world.numbered(100, SECURITY, NORTHWIND)
    ineligible = page(world, Tab.INELIGIBLE, SECURITY).items
    assert ids(ineligible) == [f"known:{numbered_key(100)}"]
    assert [r.code.value for r in ineligible[0].reasons] == ["active_claim_limit_reached"]
    assert all(r.claim_id != theirs.claim_id for r in ineligible[0].reasons)
    eligible = page(world, Tab.ELIGIBLE, SECURITY).items
    assert f"known:{numbered_key(100)}" not in ids(eligible)
    world.cancel(theirs.claim_id, NORTHWIND)
    assert f"known:{numbered_key(100)}" in ids(page(world, Tab.ELIGIBLE, SECURITY).items)


def test_complete_shows_ended_claims_including_those_past_a_deadline_before_the_sweep(world: MemoryLifecycle) -> None:
    lapsed = world.numbered(1)
    world.at(NOW + HOUR)
    cancelled = world.numbered(2)
    world.cancel(cancelled.claim_id)
    world.at(NOW + 2 * HOUR)
    declined = world.numbered(3)
    world.request(declined.claim_id, deal_size_usd=1000, disclaimer_accepted=True)
    world.decisions.decide(token_in(world.mailer.sent[-1].text), Decision.DECLINE)
    world.at(NOW + 3 * HOUR)
    completed = world.submitted()
    world.review(completed.claim_id)
    world.at(NOW + 30 * DAY)
    live = world.numbered(5)
    complete = page(world, Tab.COMPLETE).items
    assert ids(complete) == [completed.claim_id, declined.claim_id, cancelled.claim_id, lapsed.claim_id]
    states = [i.claim.state for i in complete if i.claim]
    assert states == [ClaimState.COMPLETED, ClaimState.CONSENT_DECLINED, ClaimState.CANCELLED, ClaimState.EXPIRED]
    assert all(i.actions == [] and i.days_left is None and i.deadline is None for i in complete)
    assert world.stored(lapsed.claim_id).state is ClaimState.PENDING_CONSENT  # not written by reading
    eligible = page(world).items
    assert [i.claim.claim_id for i in eligible if i.claim] == [live.claim_id]


# ---------------------------------------------------------------- items: actions, deadline, days left


def test_actions_follow_the_claim_as_it_is_now(world: MemoryLifecycle) -> None:
    pending = world.numbered(1)
    now = world.clock.now()
    assert actions_for(pending, now) == [Action.SEND_CONSENT, Action.CANCEL]
    world.requested(pending.claim_id)
    requested = world.stored(pending.claim_id)
    assert actions_for(requested, world.clock.now()) == [Action.CANCEL]
    assert actions_for(requested, world.clock.now() + HOUR) == [Action.RESEND_CONSENT, Action.CANCEL]
    for _ in range(5):
        world.at(world.clock.now() + HOUR)
        world.request(pending.claim_id)
    exhausted = world.stored(pending.claim_id)
    assert actions_for(exhausted, world.clock.now() + DAY) == [Action.CANCEL]
    granted = world.granted()
    assert actions_for(granted, world.clock.now()) == [Action.SUBMIT, Action.CANCEL]
    submitted = world.submit(granted.claim_id)
    assert actions_for(submitted, world.clock.now()) == []
    assert actions_for(requested, requested.consent_deadline) == []  # expired: nothing to do


def test_deadline_and_days_left(world: MemoryLifecycle) -> None:
    pending = world.numbered(1)
    granted = world.granted()

    def item(claim: Claim) -> PageItem:
        [found] = [i for i in page(world).items if i.claim and i.claim.claim_id == claim.claim_id]
        return found

    assert (item(pending).deadline, item(pending).days_left) == (NOW + 30 * DAY, 30)
    assert (item(granted).deadline, item(granted).days_left) == (NOW + 90 * DAY, 90)
    world.at(NOW + 12 * HOUR)
    assert item(pending).days_left == 29
    world.at(NOW + 30 * DAY - HOUR)
    assert (item(pending).days_left, item(pending).actions) == (0, [Action.SEND_CONSENT, Action.CANCEL])


# ---------------------------------------------------------------- pages (rule 24)


def mixed_world(world: MemoryLifecycle) -> None:
    """Known customers and Azure Migrate claims in every state, made an hour apart, some past their deadline."""
    for n in range(100, 110):
        known(world, n)
        world.at(world.clock.now() + HOUR)
    for n in ENTERPRISE:
        known(world, n)
        world.at(world.clock.now() + HOUR)
    for n in range(1, 8):  # these lapse: made more than 30 days before the end
        claim = world.numbered(n)
        if n % 3 == 0:
            world.cancel(claim.claim_id)
        world.at(world.clock.now() + HOUR)
    world.at(world.clock.now() + 31 * DAY)
    for n in range(8, 30):
        claim = world.numbered(100 + n % 4 if n in (8, 9) else n)
        if n % 5 == 0:
            world.cancel(claim.claim_id)
        elif n % 7 == 0:
            world.accept(claim.claim_id)
        elif n % 11 == 0:
            world.accept(claim.claim_id)
            world.submit(claim.claim_id)
            world.review(claim.claim_id, "reject")
        world.at(world.clock.now() + HOUR)


def expected_tab(world: MemoryLifecycle, tab: Tab) -> list[str]:
    """The tab's content worked out from the store directly: newest claims first, then known customers."""
    now = world.clock.now()
    mine = [c for c in world.claims.claims.values() if c.partner_id == CONTOSO and c.engagement_id == MIGRATE]
    newest = sorted(mine, key=lambda c: (c.created_at, c.claim_id), reverse=True)
    ended = [c.claim_id for c in newest if c.effective_state(now).is_terminal]
    live = [c.claim_id for c in newest if not c.effective_state(now).is_terminal]
    claimed = {c.customer_key for c in mine if not c.effective_state(now).is_terminal}
    customers = sorted(
        world.claims.list_known_customers(CONTOSO), key=lambda k: (k.updated_at, k.customer_id), reverse=True
    )
    enterprise = {numbered_key(n) for n in ENTERPRISE}
    eligible = [f"known:{k.customer_id}" for k in customers if k.customer_id not in claimed | enterprise]
    ineligible = [f"known:{k.customer_id}" for k in customers if k.customer_id in enterprise]
    return {Tab.ELIGIBLE: live + eligible, Tab.INELIGIBLE: ineligible, Tab.COMPLETE: ended}[tab]


@pytest.mark.parametrize("tab", list(Tab), ids=lambda t: t.value)
def test_every_page_size_shows_every_item_once_in_order(world: MemoryLifecycle, tab: Tab) -> None:
    mixed_world(world)
    expected = expected_tab(world, tab)
    assert len(expected) >= 5
    for limit in [*range(1, 12), 25, 100]:
        pages = walk(world, tab, limit)
        shown = [i for items in pages for i in ids(items)]
        assert shown == expected, limit
        assert all(len(items) == limit for items in pages[:-1] if items), limit


def test_a_next_cursor_never_leads_to_an_empty_page(world: MemoryLifecycle) -> None:
    for n in (1, 2):
        world.numbered(n)
    world.at(NOW + 31 * DAY)  # the first two lapsed: still in the active index, no longer shown as active
    live = [world.numbered(n) for n in range(3, 7)]
    pages = walk(world, Tab.ELIGIBLE, 4)
    assert [ids(items) for items in pages] == [[c.claim_id for c in reversed(live)]]


def test_an_exactly_full_last_page_has_no_next_cursor(world: MemoryLifecycle) -> None:
    made = [world.numbered(n) for n in range(1, 9)]
    assert [len(items) for items in walk(world, Tab.ELIGIBLE, 4)] == [4, 4]
    for claim in made:
        world.cancel(claim.claim_id)
    assert [len(items) for items in walk(world, Tab.COMPLETE, 4)] == [4, 4]
