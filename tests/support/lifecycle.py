"""Claims taken through the real flows (add, consent, submit, review), on moto and on the in-memory fakes.

``LifecycleApi`` drives the real handlers on moto; ``MemoryLifecycle`` drives the domain use cases on the
in-memory fakes with one fixed clock. Both reach ``consent_granted`` only by a real consent acceptance
(the link out of the email, then the page's POST), so a granted claim also makes a known customer.

``TableSnapshot`` is a store view (``tests.support.claims.StoreView``) read from one scan of the table;
``assert_all_counters_match`` checks every counter, guard and claim of a store against each other.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mci.adapters import dynamodb_items as items
from mci.adapters.dynamodb_batches import batch_get
from mci.adapters.dynamodb_claims import HOLDER_PREFIX, claim_from_item
from mci.domain.claims import ACTIVE_STATES, Claim, Decision
from mci.domain.commands import AddCustomer, Cancellation, ClaimCustomer, Review, ReviewDecision, Submission
from mci.domain.consent import PageStatus
from mci.domain.customers_page import CustomersPageQuery
from mci.domain.expiry import Sweep, SweepReport
from mci.domain.lifecycle import Lifecycle
from mci.domain.principal import Principal
from tests.support.api import Answer, Caller
from tests.support.claims import MemoryStoreView, StoredCounter, StoreView, assert_counter_matches_claims
from tests.support.consent import (
    FIRST_REQUEST,
    ConsentApi,
    MemoryConsent,
    principal,
    sent_messages,
    token_in,
    verify_sender,
)
from tests.support.reference import CONTOSO, add_customer_body

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OPERATIONS_PARTNER = "p-microsoft-ops"
OPERATIONS_ROLES = ["mci_operations"]
TABLE = "ClaimsTable"


# ---------------------------------------------------------------- more customers


def numbered_tenant(n: int) -> str:
    return f"5f1c2a3b-0000-4000-8000-{n:012d}"


def numbered_domain(n: int) -> str:
    return f"customer-{n}.example"


def numbered_customers(numbers: Iterable[int], *, segment: str = "SMB", country: str = "US") -> dict[str, Any]:
    """Reference data for customers ``customer-<n>.example`` (tenant ``numbered_tenant(n)``), one per number.

    They are eligible for Azure Migrate and the Security workshop of the demo data, added by domain.
    """
    numbers = list(numbers)
    return {
        "customers": [
            {
                "identifier_type": "tenant_id",
                "value": numbered_tenant(n),
                "name": f"Customer {n}",
                "segment": segment,
                "country": country,
                "cosell_allowed": False,
                "opportunity_value_usd": None,
            }
            for n in numbers
        ],
        "domains": [{"domain": numbered_domain(n), "tenant_id": numbered_tenant(n)} for n in numbers],
    }


def numbered_key(n: int) -> str:
    """The customer key of ``customer-<n>.example`` (rule 3: its tenant)."""
    return f"tenant_id:{numbered_tenant(n)}"


def numbered_body(n: int, engagement_id: str, **overrides: Any) -> dict[str, Any]:
    """Add ``customer-<n>.example`` to one engagement (contact at the customer's own domain)."""
    body = add_customer_body(
        friendly_name=f"Customer {n} project",
        identifier={"type": "domain", "value": numbered_domain(n)},
        engagement_ids=[engagement_id],
        customer_contact={"name": f"Buyer {n}", "email": f"buyer@{numbered_domain(n)}", "language": "en"},
    )
    body.update(overrides)
    return body


# ---------------------------------------------------------------- moto: the routes


@dataclass
class LifecycleApi(ConsentApi):
    """The partner's claim routes, the operations routes and the public consent page, through the real handlers."""

    ops: Caller

    # --- creating and moving claims through the real flows ---------------------------------------

    def add(self, body: dict[str, Any] | None = None, caller: Caller | None = None) -> Answer:
        return (caller or self.partner).call("add_customer", "POST", "/customers", body or add_customer_body())

    def requested_by(self, claim_id: str, caller: Caller | None = None) -> str:
        """Request consent as ``caller`` (first request) and return the token of the email just sent."""
        before = len(sent_messages())
        answer = self.request(claim_id, FIRST_REQUEST, caller=caller)
        assert answer.status == 200, answer.body
        messages = sent_messages()
        assert len(messages) == before + 1
        return token_in(str(messages[-1].body))

    def granted(self, body: dict[str, Any] | None = None, caller: Caller | None = None) -> str:
        """A new claim whose customer accepted consent through the link in the email."""
        claim_id = self.add_claim(body, caller)
        self.accept(claim_id, caller)
        return claim_id

    def accept(self, claim_id: str, caller: Caller | None = None) -> None:
        token = self.requested_by(claim_id, caller)
        answer = self.decide(token, "accept")
        assert answer.status == 200, answer.body
        assert self.claim_as(claim_id, caller)["state"] == "consent_granted"

    def declined(self, body: dict[str, Any] | None = None, caller: Caller | None = None) -> str:
        claim_id = self.add_claim(body, caller)
        token = self.requested_by(claim_id, caller)
        assert self.decide(token, "decline").status == 200
        return claim_id

    def submitted(self, body: dict[str, Any] | None = None, caller: Caller | None = None) -> str:
        claim_id = self.granted(body, caller)
        answer = self.submit(claim_id, caller=caller)
        assert answer.status == 200, answer.body
        return claim_id

    def reviewed(self, decision: str, body: dict[str, Any] | None = None, caller: Caller | None = None) -> str:
        claim_id = self.submitted(body, caller)
        answer = self.review(claim_id, decision, "checked by operations")
        assert answer.status == 200, answer.body
        return claim_id

    def claim_as(self, claim_id: str, caller: Caller | None = None) -> dict[str, Any]:
        answer = self.get_claim(claim_id, caller=caller)
        assert answer.status == 200, answer.body
        body: dict[str, Any] = answer.body
        return body

    # --- the lifecycle routes --------------------------------------------------------------------

    def submit(
        self, claim_id: str, body: dict[str, Any] | None = None, *, caller: Caller | None = None, key: str | None = None
    ) -> Answer:
        return (caller or self.partner).call(
            "submit_claim",
            "POST",
            f"/claims/{claim_id}/submission",
            {} if body is None else body,
            route_key="POST /claims/{claim_id}/submission",
            path_parameters={"claim_id": claim_id},
            headers={"idempotency-key": key} if key else None,
        )

    def cancel(
        self,
        claim_id: str,
        reason: str | None = "customer changed plans",
        *,
        body: dict[str, Any] | None = None,
        caller: Caller | None = None,
        key: str | None = None,
    ) -> Answer:
        return (caller or self.partner).call(
            "cancel_claim",
            "POST",
            f"/claims/{claim_id}/cancellation",
            body if body is not None else {"reason": reason},
            route_key="POST /claims/{claim_id}/cancellation",
            path_parameters={"claim_id": claim_id},
            headers={"idempotency-key": key} if key else None,
        )

    def review(
        self,
        claim_id: str,
        decision: str = "complete",
        reason: str | None = "checked by operations",
        *,
        body: dict[str, Any] | None = None,
        caller: Caller | None = None,
    ) -> Answer:
        return (caller or self.ops).call(
            "review_claim",
            "POST",
            f"/ops/claims/{claim_id}/review",
            body if body is not None else {"decision": decision, "reason": reason},
            route_key="POST /ops/claims/{claim_id}/review",
            path_parameters={"claim_id": claim_id},
        )

    # --- claim customer, the Customers page, reference data, the sweep ----------------------------

    def claim_customer(
        self, customer_id: str, body: dict[str, Any], *, caller: Caller | None = None, key: str | None = None
    ) -> Answer:
        return (caller or self.partner).call(
            "claim_customer",
            "POST",
            f"/known-customers/{customer_id}/claims",
            body,
            route_key="POST /known-customers/{customer_id}/claims",
            path_parameters={"customer_id": customer_id},
            headers={"idempotency-key": key} if key else None,
        )

    def customers(
        self,
        engagement_id: str,
        tab: str | None = None,
        *,
        cursor: str | None = None,
        limit: int | str | None = None,
        caller: Caller | None = None,
    ) -> Answer:
        query = {
            name: str(value)
            for name, value in (("tab", tab), ("cursor", cursor), ("limit", limit))
            if value is not None
        }
        return (caller or self.partner).call(
            "customers_page",
            "GET",
            f"/engagements/{engagement_id}/customers",
            route_key="GET /engagements/{engagement_id}/customers",
            path_parameters={"engagement_id": engagement_id},
            query=query or None,
        )

    def load_reference(self, data: dict[str, Any]) -> Answer:
        answer = self.ops.call("load_reference_data", "POST", "/ops/reference-data", data)
        assert answer.status == 200, answer.body
        return answer

    def sweep(self) -> dict[str, int]:
        """One run of the scheduled sweep through its real handler."""
        module = importlib.import_module("functions.expire_claims.app")
        report: dict[str, int] = module.lambda_handler({}, self.partner.context)
        return report


def lifecycle_api(context: Any, partner_id: str = CONTOSO) -> LifecycleApi:
    """The API as ``partner_id``, as operations and as the public, with the SES sender verified (moto active)."""
    verify_sender()
    return LifecycleApi(
        partner=Caller(partner_id, ["incentives_user"], context),
        public=Caller(None, [], context),
        ops=Caller(OPERATIONS_PARTNER, OPERATIONS_ROLES, context),
    )


# ---------------------------------------------------------------- store views


class TableSnapshot:
    """Every counter, guard and claim of the claims table, read with one scan (a fresh table per test)."""

    def __init__(self, client: DynamoDBClient, table_name: str = TABLE) -> None:
        self.counters: dict[tuple[str, str], StoredCounter] = {}
        self.guards: dict[tuple[str, str, str], str] = {}
        self.claims: list[Claim] = []
        for page in client.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
            for raw in page["Items"]:
                self._add(raw)

    def _add(self, raw: dict[str, Any]) -> None:
        values = items.deserialize(raw)
        pk, sk = str(values["PK"]), str(values["SK"])
        if values.get("type") == "claim":
            self.claims.append(claim_from_item(raw))
        elif pk.startswith("LIMIT#"):
            _, engagement_id, customer_key = pk.split("#", 2)
            if sk == "COUNT":
                self.counters[(engagement_id, customer_key)] = StoredCounter(
                    active_count=int(values["active_count"]),
                    version=int(values["version"]),
                    holders={name[len(HOLDER_PREFIX) :] for name in values if name.startswith(HOLDER_PREFIX)},
                )
            else:
                self.guards[(engagement_id, customer_key, sk.removeprefix("PARTNER#"))] = str(values["claim_id"])

    def counter(self, engagement_id: str, customer_key: str) -> StoredCounter | None:
        return self.counters.get((engagement_id, customer_key))

    def guard(self, engagement_id: str, customer_key: str, partner_id: str) -> str | None:
        return self.guards.get((engagement_id, customer_key, partner_id))

    def claims_of(self, engagement_id: str, customer_key: str) -> list[Claim]:
        return [c for c in self.claims if (c.engagement_id, c.customer_key) == (engagement_id, customer_key)]

    def limit_keys(self) -> set[tuple[str, str]]:
        return {(c.engagement_id, c.customer_key) for c in self.claims} | set(self.counters)

    def guard_entries(self) -> Iterable[tuple[tuple[str, str, str], str]]:
        return self.guards.items()


class MemorySnapshot(MemoryStoreView):
    """The memory fake's store view, with the keys and guards it holds."""

    def limit_keys(self) -> set[tuple[str, str]]:
        return {(c.engagement_id, c.customer_key) for c in self.repository.claims.values()} | set(
            self.repository.counters
        )

    def guard_entries(self) -> Iterable[tuple[tuple[str, str, str], str]]:
        return self.repository.guards.items()

    def claims_list(self) -> list[Claim]:
        return list(self.repository.claims.values())


def assert_all_counters_match(view: TableSnapshot | MemorySnapshot) -> None:
    """Rule 11 over the whole store: every counter equals its active claims, and every guard names one of them."""
    checked: StoreView = view
    for engagement_id, customer_key in sorted(view.limit_keys()):
        assert_counter_matches_claims(checked, engagement_id, customer_key)
    for (engagement_id, customer_key, partner_id), claim_id in view.guard_entries():
        active = [
            c.claim_id
            for c in view.claims_of(engagement_id, customer_key)
            if c.partner_id == partner_id and c.state in ACTIVE_STATES
        ]
        assert active == [claim_id], f"guard {engagement_id}/{customer_key}/{partner_id} -> {claim_id}, active {active}"


def stored_claims(client: DynamoDBClient, claim_ids: Iterable[str], table_name: str = TABLE) -> dict[str, Claim]:
    """The claims as stored, by id (strongly consistent batch reads)."""
    found = batch_get(client, table_name, [items.claim_key(c) for c in set(claim_ids)], consistent=True)
    return {c.claim_id: c for c in (claim_from_item(i) for i in found)}


# ---------------------------------------------------------------- memory tier


OPERATIONS = Principal(OPERATIONS_PARTNER, frozenset(OPERATIONS_ROLES), "ops-1")


@dataclass
class MemoryLifecycle(MemoryConsent):
    """Nominations, consent, lifecycle, the sweep and the Customers page over the in-memory fakes, one clock."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.lifecycle = Lifecycle(claims=self.claims, clock=self.clock, sleep=lambda _: None)
        self.page = CustomersPageQuery(reference=self.reference, claims=self.claims, now=self.clock.now)
        self.sweeper = Sweep(
            claims=self.claims,
            due=self.claims,
            mailer=self.mailer,
            clock=self.clock,
            engagement_name=lambda e: self.reference.engagements[e].name,
        )

    @property
    def view(self) -> MemorySnapshot:
        return MemorySnapshot(self.claims)

    def add(self, partner_id: str = CONTOSO, **overrides: Any) -> Claim:
        return self.add_claim(partner_id, **overrides)

    def add_as(self, who: Principal, **overrides: Any) -> list[Claim]:
        return self.nominations.add_customer(who, AddCustomer.model_validate(add_customer_body(**overrides)))

    def accept(self, claim_id: str, partner_id: str = CONTOSO) -> Claim:
        before = len(self.mailer.sent)
        self.request(claim_id, partner_id, **FIRST_REQUEST)
        assert len(self.mailer.sent) == before + 1
        token = token_in(self.mailer.sent[-1].text)
        assert self.flow.decide(token, Decision.ACCEPT).decision is Decision.ACCEPT
        return self.stored(claim_id)

    def granted(self, partner_id: str = CONTOSO, **overrides: Any) -> Claim:
        claim = self.add(partner_id, **overrides)
        return self.accept(claim.claim_id, partner_id)

    def declined(self, partner_id: str = CONTOSO, **overrides: Any) -> Claim:
        claim = self.add(partner_id, **overrides)
        self.request(claim.claim_id, partner_id, **FIRST_REQUEST)
        token = token_in(self.mailer.sent[-1].text)
        assert self.flow.decide(token, Decision.DECLINE).status is PageStatus.OPEN
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
