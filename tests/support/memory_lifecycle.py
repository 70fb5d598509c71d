"""Claims taken through the real flows (add, consent, submit, review) by the domain use cases on the in-memory fakes.

``MemoryLifecycle`` drives nominations, consent, the lifecycle, the sweep and the Customers page with one
fixed clock, and reaches ``consent_granted`` only by a real consent acceptance (the token of the email).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from mci.domain.claims import Claim, Decision
from mci.domain.commands import AddCustomer, Cancellation, ClaimCustomer, Review, ReviewDecision, Submission
from mci.domain.consent_decision import PageStatus
from mci.domain.customers_page import CustomersPageQuery
from mci.domain.expiry import Sweep, SweepReport
from mci.domain.lifecycle import Lifecycle
from mci.domain.principal import OPERATIONS_PARTNER_ID, Principal
from mci.domain.reference import ReferenceData
from tests.support.consent import FIRST_REQUEST, MemoryConsent, principal, token_in
from tests.support.numbered_customers import numbered_body, numbered_customers, numbered_key
from tests.support.reference import CONTOSO, add_customer_body
from tests.support.store_snapshots import MemorySnapshot
from tests.support.timers import FakeTimer

CURSOR_KEY = b"memory-cursor-signing-key-not-a-secret"  # signs the in-memory Customers page's cursors


OPERATIONS = Principal(OPERATIONS_PARTNER_ID, frozenset({"mci_operations"}), "ops-1")


@dataclass
class MemoryLifecycle(MemoryConsent):
    """Nominations, consent, lifecycle, the sweep and the Customers page over the in-memory fakes, one clock."""

    def __post_init__(self) -> None:
        super().__post_init__()
        claim_numbers, other_numbers = itertools.count(1), itertools.count(1)
        # the same ids in every run, so two runs can be compared item by item
        self.nominations.new_id = lambda: f"claim-{next(claim_numbers):04d}"
        self.requests.new_id = lambda: f"id-{next(other_numbers):04d}"
        self.lifecycle = Lifecycle(claims=self.claims, clock=self.clock, sleep=lambda _: None)
        self.page = CustomersPageQuery(
            reference=self.reference, claims=self.claims, now=self.clock.now, cursor_key=CURSOR_KEY
        )
        self.timer = FakeTimer()  # the sweep paces its sends on it: no test waits
        self.sweeper = Sweep(
            claims=self.claims,
            due=self.claims,
            mailer=self.mailer,
            clock=self.clock,
            engagement_names=lambda ids: {e: self.reference.engagements[e].name for e in ids},
            monotonic=self.timer.monotonic,
            sleep=self.timer.sleep,
        )

    @property
    def view(self) -> MemorySnapshot:
        return MemorySnapshot(self.claims)

    def add(self, partner_id: str = CONTOSO, **overrides: Any) -> Claim:
        return self.add_claim(partner_id, **overrides)

    def numbered(
        self, n: int, engagement_id: str = "e-azure-migrate", partner_id: str = CONTOSO, **overrides: Any
    ) -> Claim:
        """A claim of ``partner_id`` for ``customer-<n>.example`` (its reference data loaded on first use)."""
        if numbered_key(n) not in self.reference.customers:
            self.reference.save(ReferenceData.model_validate(numbered_customers([n])))
        body = numbered_body(n, engagement_id, **overrides)
        if partner_id != CONTOSO:
            body["location_id"] = next(
                loc.location_id for loc in self.reference.locations.values() if loc.partner_id == partner_id
            )
        return self.nominations.add_customer(principal(partner_id), AddCustomer.model_validate(body))[0]

    def accept(self, claim_id: str, partner_id: str = CONTOSO) -> Claim:
        before = len(self.mailer.sent)
        self.request(claim_id, partner_id, **FIRST_REQUEST)
        assert len(self.mailer.sent) == before + 1
        token = token_in(self.mailer.sent[-1].text)
        assert self.decisions.decide(token, Decision.ACCEPT).decision is Decision.ACCEPT
        return self.stored(claim_id)

    def granted(self, partner_id: str = CONTOSO, **overrides: Any) -> Claim:
        claim = self.add(partner_id, **overrides)
        return self.accept(claim.claim_id, partner_id)

    def declined(self, partner_id: str = CONTOSO, **overrides: Any) -> Claim:
        claim = self.add(partner_id, **overrides)
        self.request(claim.claim_id, partner_id, **FIRST_REQUEST)
        token = token_in(self.mailer.sent[-1].text)
        assert self.decisions.decide(token, Decision.DECLINE).status is PageStatus.OPEN
        return self.stored(claim.claim_id)

    def submitted(self, partner_id: str = CONTOSO, **overrides: Any) -> Claim:
        claim = self.granted(partner_id, **overrides)
        return self.lifecycle.submit(principal(partner_id), claim.claim_id, Submission())

    def submit(self, claim_id: str, partner_id: str = CONTOSO, notes: str | None = None) -> Claim:
        return self.lifecycle.submit(principal(partner_id), claim_id, Submission(notes=notes))

    def cancel(self, claim_id: str, partner_id: str = CONTOSO, reason: str = "customer changed plans") -> Claim:
        return self.lifecycle.cancel(principal(partner_id), claim_id, Cancellation(reason=reason))

    def review(
        self, claim_id: str, decision: str = "complete", reason: str = "checked", who: Principal = OPERATIONS
    ) -> Claim:
        return self.lifecycle.review(who, claim_id, Review(decision=ReviewDecision(decision), reason=reason))

    def claim_customer(self, customer_id: str, partner_id: str = CONTOSO, **fields: Any) -> list[Claim]:
        body = {"friendly_name": "Claimed again", "location_id": add_customer_body()["location_id"], **fields}
        return self.nominations.claim_customer(principal(partner_id), customer_id, ClaimCustomer.model_validate(body))

    def sweep(self) -> SweepReport:
        return self.sweeper.run()
