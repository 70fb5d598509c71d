"""Rules 21-24: the Customers page of an engagement, its three tabs, newest first, in pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

from mci.domain.claims import MAX_RESENDS, RESEND_INTERVAL, UNDELIVERED, Claim, ClaimState
from mci.domain.eligibility import Reason, accepted_identifier, evaluate
from mci.domain.errors import NotFound, ValidationFailed
from mci.domain.identifiers import Identifier, IdentifierType, parse_customer_key
from mci.domain.lookups import SeparateLookups
from mci.domain.paging import MIN_CURSOR_KEY_BYTES, days_left, sign_cursor, signed_values
from mci.domain.ports import (
    ClaimRepository,
    KnownCustomer,
    LimitKeys,
    Lookup,
    Lookups,
    PartnerClaims,
    ReferenceRepository,
)
from mci.domain.principal import CLAIM_ROLES, Principal
from mci.domain.reference import Engagement, Location

MAX_PAGE = 100
DEFAULT_PAGE = 25


class Tab(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    COMPLETE = "complete"


class Action(StrEnum):
    SEND_CONSENT = "send_consent"
    RESEND_CONSENT = "resend_consent"
    SUBMIT = "submit"
    CANCEL = "cancel"
    CLAIM_CUSTOMER = "claim_customer"


PageItemKind = Literal["claim", "known_customer"]


@dataclass(frozen=True, slots=True)
class PageItem:
    kind: PageItemKind
    friendly_name: str
    identifier_type: str
    identifier_value: str
    claim: Claim | None = None
    customer_id: str | None = None
    deadline: datetime | None = None
    days_left: int | None = None
    actions: list[Action] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CustomersPage:
    items: list[PageItem]
    next_cursor: str | None
    note: str | None = None


class PageStore(ClaimRepository, PartnerClaims, Protocol):
    def list_known_customers(self, partner_id: str) -> list[KnownCustomer]: ...


def actions_for(claim: Claim, now: datetime) -> list[Action]:
    """What the caller can do with the claim right now."""
    state = claim.effective_state(now)
    if state is ClaimState.PENDING_CONSENT:
        return [Action.SEND_CONSENT, Action.CANCEL]
    if state is ClaimState.CONSENT_REQUESTED:
        sent = claim.consent_requests
        # An email that never reached the customer (rule 29: refused, or given up) is sent again at once.
        undelivered = claim.consent_email is not None and claim.consent_email.status in UNDELIVERED
        can_resend = undelivered or (
            sent.count - 1 < MAX_RESENDS and (sent.last_sent_at is None or now - sent.last_sent_at >= RESEND_INTERVAL)
        )
        return [Action.RESEND_CONSENT, Action.CANCEL] if can_resend else [Action.CANCEL]
    if state is ClaimState.CONSENT_GRANTED:
        return [Action.SUBMIT, Action.CANCEL]
    return []


def _claim_item(claim: Claim, now: datetime) -> PageItem:
    seen = claim.as_seen_at(now)
    deadline = seen.deadline
    return PageItem(
        kind="claim",
        friendly_name=claim.friendly_name,
        identifier_type=claim.identifier.type.value,
        identifier_value=claim.identifier.value,
        claim=seen,
        deadline=deadline,
        days_left=days_left(deadline, now),
        actions=actions_for(claim, now),
    )


@dataclass(frozen=True, slots=True)
class Cursor:
    """Opaque to clients, bound to the partner, engagement and tab it was issued for, and signed with the
    service's key (HMAC-SHA256): rule 31, only a cursor the service issued is ever parsed."""

    partner_id: str
    engagement_id: str
    tab: Tab
    phase: str
    position: str

    def encode(self, key: bytes) -> str:
        return sign_cursor(key, [self.partner_id, self.engagement_id, self.tab.value, self.phase, self.position])

    @classmethod
    def decode(cls, text: str, *, key: bytes, partner_id: str, engagement_id: str, tab: Tab) -> Cursor:
        values = signed_values(text, key)
        try:
            cursor = cls(values[0], values[1], Tab(values[2]), str(values[3]), str(values[4]))
        except (ValueError, TypeError, IndexError, KeyError):
            raise ValidationFailed.single("cursor", "is not a cursor this service issued") from None
        if (cursor.partner_id, cursor.engagement_id, cursor.tab) != (partner_id, engagement_id, tab):
            raise ValidationFailed.single("cursor", "belongs to another page")
        return cursor


@dataclass
class CustomersPageQuery:
    reference: ReferenceRepository
    claims: PageStore
    now: Callable[[], datetime]
    cursor_key: bytes  # signs the cursors it issues (settings: CURSOR_SIGNING_KEY)
    lookups: Lookups | None = None  # one BatchGetItem on DynamoDB; by default the ports one by one

    def __post_init__(self) -> None:
        if len(self.cursor_key) < MIN_CURSOR_KEY_BYTES:
            raise ValueError(f"the cursor signing key needs at least {MIN_CURSOR_KEY_BYTES} bytes")

    def page(
        self, principal: Principal, engagement_id: str, tab: Tab, cursor_text: str | None, limit: int
    ) -> CustomersPage:
        principal.require_any(CLAIM_ROLES, "Reading the Customers page")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed.single("limit", f"must be from 1 to {MAX_PAGE}")
        engagement = self.reference.get_engagements([engagement_id]).get(engagement_id)
        if engagement is None:
            raise NotFound("Engagement")
        cursor = (
            Cursor.decode(
                cursor_text, key=self.cursor_key, partner_id=principal.partner_id, engagement_id=engagement_id, tab=tab
            )
            if cursor_text
            else None
        )
        now = self.now()
        if tab is Tab.COMPLETE:
            return self._complete(principal, engagement, cursor, limit, now)
        if tab is Tab.ELIGIBLE:
            return self._eligible(principal, engagement, cursor, limit, now)
        return self._ineligible(principal, engagement, cursor, limit, now)

    # --- claims --------------------------------------------------------------------------------

    def _claims(
        self,
        principal: Principal,
        engagement: Engagement,
        *,
        terminal_partition: bool,
        keep: Callable[[Claim], bool],
        before: str | None,
        limit: int,
    ) -> tuple[list[Claim], bool]:
        """Up to ``limit`` kept claims of one partition, newest first; True when more may follow."""
        kept: list[Claim] = []
        position = before
        while True:
            # One more than the page needs: "more" only when a further kept claim really exists.
            batch, more = self.claims.partner_claims(
                principal.partner_id,
                engagement.engagement_id,
                terminal=terminal_partition,
                before=position,
                limit=limit - len(kept) + 1,
            )
            for claim in batch:
                if keep(claim):
                    if len(kept) == limit:
                        return kept, True
                    kept.append(claim)
            if not more or not batch:
                return kept, False
            position = batch[-1].position

    def _complete(
        self, principal: Principal, engagement: Engagement, cursor: Cursor | None, limit: int, now: datetime
    ) -> CustomersPage:
        """Rule 23, with rule 17: claims past their deadline count as complete before the sweep writes them."""
        before = cursor.position if cursor else None
        done, more_done = self._claims(
            principal, engagement, terminal_partition=True, keep=lambda c: True, before=before, limit=limit
        )
        lapsed, more_lapsed = self._claims(
            principal,
            engagement,
            terminal_partition=False,
            keep=lambda c: c.effective_state(now) is ClaimState.EXPIRED,
            before=before,
            limit=limit,
        )
        merged = sorted([*done, *lapsed], key=lambda c: c.position, reverse=True)
        page = merged[:limit]
        more = len(merged) > limit or more_done or more_lapsed
        next_cursor = (
            Cursor(principal.partner_id, engagement.engagement_id, Tab.COMPLETE, "claims", page[-1].position).encode(
                self.cursor_key
            )
            if more and page
            else None
        )
        return CustomersPage(items=[_claim_item(c, now) for c in page], next_cursor=next_cursor)

    # --- known customers ----------------------------------------------------------------------

    def _eligible(
        self, principal: Principal, engagement: Engagement, cursor: Cursor | None, limit: int, now: datetime
    ) -> CustomersPage:
        """Rule 21: active claims first (newest first), then eligible known customers without a claim."""
        items: list[PageItem] = []
        if cursor is None or cursor.phase == "claims":
            active, more = self._claims(
                principal,
                engagement,
                terminal_partition=False,
                keep=lambda c: c.effective_state(now) is not ClaimState.EXPIRED,
                before=cursor.position if cursor else None,
                limit=limit,
            )
            items = [_claim_item(c, now) for c in active]
            if more:
                return CustomersPage(
                    items=items,
                    next_cursor=Cursor(
                        principal.partner_id, engagement.engagement_id, Tab.ELIGIBLE, "claims", active[-1].position
                    ).encode(self.cursor_key),
                )
            cursor = None
        verdicts = self._known_verdicts(principal, engagement, now)
        eligible = [(k, r) for k, r in verdicts if not r]
        return self._known_page(
            principal,
            engagement,
            tab=Tab.ELIGIBLE,
            entries=eligible,
            cursor=cursor,
            room=limit - len(items),
            items=items,
            now=now,
        )

    def _ineligible(
        self, principal: Principal, engagement: Engagement, cursor: Cursor | None, limit: int, now: datetime
    ) -> CustomersPage:
        """Rule 22: known customers that are not eligible, with reasons; none listed for MSX-only engagements."""
        if set(engagement.identifier_types) == {IdentifierType.MSX_OPPORTUNITY_ID}:
            return CustomersPage(
                items=[],
                next_cursor=None,
                note="This engagement accepts only MSX opportunity ids, so ineligible customers are not listed.",
            )
        verdicts = self._known_verdicts(principal, engagement, now)
        ineligible = [(k, r) for k, r in verdicts if r and not _has_live_claim(r)]
        return self._known_page(
            principal, engagement, tab=Tab.INELIGIBLE, entries=ineligible, cursor=cursor, room=limit, items=[], now=now
        )

    def _known_page(
        self,
        principal: Principal,
        engagement: Engagement,
        *,
        tab: Tab,
        entries: list[tuple[KnownCustomer, list[Reason]]],
        cursor: Cursor | None,
        room: int,
        items: list[PageItem],
        now: datetime,
    ) -> CustomersPage:
        ordered = sorted(entries, key=lambda e: _known_position(e[0]), reverse=True)
        if cursor is not None and cursor.phase == "known":
            ordered = [e for e in ordered if _known_position(e[0]) < cursor.position]
        page = ordered[: max(room, 0)]
        for known, reasons in page:
            items.append(
                PageItem(
                    kind="known_customer",
                    friendly_name=known.name,
                    identifier_type=known.identifier_type,
                    identifier_value=known.identifier_value,
                    customer_id=known.customer_id,
                    actions=[Action.CLAIM_CUSTOMER] if not reasons else [],
                    reasons=reasons,
                )
            )
        next_cursor = None
        if len(ordered) > len(page):
            position = _known_position(page[-1][0]) if page else "\uffff"
            next_cursor = Cursor(principal.partner_id, engagement.engagement_id, tab, "known", position).encode(
                self.cursor_key
            )
        return CustomersPage(items=items, next_cursor=next_cursor)

    def _known_verdicts(
        self, principal: Principal, engagement: Engagement, now: datetime
    ) -> list[tuple[KnownCustomer, list[Reason]]]:
        """Each known customer's reasons for this engagement, as if claimed from the partner's best location."""
        known = self.claims.list_known_customers(principal.partner_id)
        if not known:
            return []
        identifiers: dict[str, Identifier] = {}
        for k in known:
            parsed = parse_customer_key(k.customer_id)
            if parsed is not None:
                identifiers[k.customer_id] = parsed
        location = _best_location(self.reference.list_locations(principal.partner_id), engagement)
        # Every record, counter and guard at once (3 keys per known customer), as consistent as an add reads them.
        reads = self.lookups or SeparateLookups(self.reference, read_limits=self.claims.read_limits)
        found = reads.look_up(
            Lookup(
                customers=tuple(identifiers.values()),
                limits=tuple(
                    LimitKeys(principal.partner_id, customer_id, (engagement.engagement_id,))
                    for customer_id in identifiers
                ),
            )
        )
        verdicts = []
        for k in known:
            identifier = identifiers.get(k.customer_id)
            if identifier is None:
                continue
            limit_state = found.limits[k.customer_id][engagement.engagement_id].state_at(now)
            reasons = evaluate(
                engagement,
                location=location,
                identifier=accepted_identifier(identifier, k.identifiers, [engagement]),
                checked=identifier,
                customer=found.customers.get(k.customer_id),
                limit=limit_state,
                today=now.date(),
            )
            verdicts.append((k, reasons))
        return verdicts


def _known_position(known: KnownCustomer) -> str:
    return f"{known.updated_at.isoformat()}#{known.customer_id}"


def _has_live_claim(reasons: list[Reason]) -> bool:
    """A known customer whose only obstacle is the partner's own active claim is listed as that claim."""
    return any(r.code.value == "duplicate_claim" for r in reasons)


def _best_location(locations: list[Location], engagement: Engagement) -> Location:
    """An enrolled location eligible for the engagement when there is one; otherwise any, so reasons show."""
    ranked = sorted(
        locations,
        key=lambda loc: (
            not (loc.enrolled_in_mci and engagement.engagement_id in loc.eligible_engagements),
            loc.location_id,
        ),
    )
    if ranked:
        return ranked[0]
    return Location(
        location_id="0000000", partner_id="none", name="No location", enrolled_in_mci=False, eligible_engagements=[]
    )
