"""Issue 14: the "Attention required" list on the in-memory fakes: reasons, order, exact expiry, pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from mci.domain.attention import AttentionItem, AttentionPage, AttentionQuery, AttentionReason
from mci.domain.customers_page import Cursor, Tab
from mci.domain.errors import Forbidden, ValidationFailed
from mci.domain.principal import Principal
from tests.support.consent import FIRST_REQUEST, principal
from tests.support.memory_lifecycle import CURSOR_KEY, MemoryLifecycle
from tests.support.reference import CONTOSO, MIGRATE, NORTHWIND, NOW, SECURITY
from tests.support.store_snapshots import assert_all_counters_match

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def world() -> Iterator[MemoryLifecycle]:
    made = MemoryLifecycle()
    yield made
    assert_all_counters_match(made.view)  # rule 11: reading the list never changes a counter


def query(world: MemoryLifecycle) -> AttentionQuery:
    return AttentionQuery(reference=world.reference, claims=world.claims, now=world.clock.now, cursor_key=CURSOR_KEY)


def attention(
    world: MemoryLifecycle, partner_id: str = CONTOSO, cursor: str | None = None, limit: int = 25
) -> AttentionPage:
    return query(world).page(principal(partner_id), cursor, limit)


def listed(world: MemoryLifecycle, partner_id: str = CONTOSO) -> list[tuple[str, AttentionReason]]:
    return [(i.claim.claim_id, i.reason) for i in attention(world, partner_id).items]


def test_each_reason_and_nothing_else(world: MemoryLifecycle) -> None:
    pending = world.numbered(1)
    requested = world.numbered(2)
    world.request(requested.claim_id, **FIRST_REQUEST)
    granted = world.accept(world.numbered(3).claim_id)
    world.submitted(friendly_name="Submitted one")  # submitted: waits for operations, not the partner
    world.cancel(world.numbered(4).claim_id)  # terminal
    assert dict(listed(world)) == {
        pending.claim_id: AttentionReason.CONSENT_NOT_REQUESTED,
        granted.claim_id: AttentionReason.NOT_SUBMITTED,
    }
    world.at(NOW + 23 * DAY - HOUR)  # consent deadline 30 days after creation: 7 days and an hour left
    assert requested.claim_id not in dict(listed(world))
    world.at(NOW + 23 * DAY)
    assert dict(listed(world))[requested.claim_id] is AttentionReason.CONSENT_DEADLINE_SOON


def test_soonest_deadline_first_across_engagements_with_days_left(world: MemoryLifecycle) -> None:
    older = world.numbered(1, SECURITY)  # consent deadline NOW + 30 days
    world.at(NOW + 2 * DAY)
    newer = world.numbered(2, MIGRATE)  # NOW + 32 days
    granted = world.accept(world.numbered(3).claim_id)  # submission deadline NOW + 2 + 90 days
    items = attention(world).items
    assert [i.claim.claim_id for i in items] == [older.claim_id, newer.claim_id, granted.claim_id]
    first = items[0]
    assert (first.deadline, first.days_left, first.engagement_name) == (NOW + 30 * DAY, 28, "Security workshop")
    assert [i.deadline for i in items] == sorted(i.deadline for i in items)


def test_a_claim_past_its_deadline_is_expired_and_never_listed(world: MemoryLifecycle) -> None:
    pending = world.numbered(1)
    world.at(pending.consent_deadline - timedelta(microseconds=1))
    [item] = attention(world).items
    assert (item.claim.claim_id, item.days_left) == (pending.claim_id, 0)
    world.at(pending.consent_deadline)  # exactly at the deadline, before any sweep
    assert attention(world).items == []


def test_another_partners_claims_are_never_listed(world: MemoryLifecycle) -> None:
    mine = world.numbered(1)
    theirs = world.numbered(2, partner_id=NORTHWIND)
    assert [c for c, _ in listed(world)] == [mine.claim_id]
    assert [c for c, _ in listed(world, NORTHWIND)] == [theirs.claim_id]


def test_pages_follow_the_order_without_gaps_or_repeats(world: MemoryLifecycle) -> None:
    made = []
    for n in range(1, 8):
        made.append(world.numbered(n, MIGRATE if n % 2 else SECURITY).claim_id)
        world.at(world.clock.now() + HOUR)
    seen: list[AttentionItem] = []
    cursor = None
    for _ in range(10):
        page = attention(world, cursor=cursor, limit=3)
        assert len(page.items) <= 3
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [i.claim.claim_id for i in seen] == made
    assert attention(world, limit=7).next_cursor is None


def test_a_cursor_not_issued_for_this_list_and_partner_is_a_422_on_cursor(world: MemoryLifecycle) -> None:
    for n in range(1, 4):
        world.numbered(n)
    cursor = attention(world, limit=1).next_cursor
    assert cursor is not None
    customers_cursor = Cursor(CONTOSO, MIGRATE, Tab.ELIGIBLE, "claims", "x").encode(CURSOR_KEY)
    for bad, partner_id in [
        (cursor, NORTHWIND),
        (cursor[:-2] + "xx", CONTOSO),
        ("not-a-cursor", CONTOSO),
        (customers_cursor, CONTOSO),
    ]:
        with pytest.raises(ValidationFailed) as caught:
            attention(world, partner_id, cursor=bad)
        assert [e.field for e in caught.value.errors] == ["cursor"]


def test_limit_and_roles(world: MemoryLifecycle) -> None:
    for limit in (0, 101):
        with pytest.raises(ValidationFailed) as caught:
            attention(world, limit=limit)
        assert [e.field for e in caught.value.errors] == ["limit"]
    with pytest.raises(Forbidden):
        query(world).page(Principal(partner_id=CONTOSO, roles=frozenset({"referral_admin"})), None, 25)
