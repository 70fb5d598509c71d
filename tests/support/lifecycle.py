"""Claims taken through the real flows (add, consent, submit, review), on moto and on the in-memory fakes.

``LifecycleApi`` drives the real handlers on moto; ``MemoryLifecycle`` drives the domain use cases on the
in-memory fakes with one fixed clock. Both reach ``consent_granted`` only by a real consent acceptance
(the link out of the email, then the page's POST), so a granted claim also makes a known customer.

``TableSnapshot`` is a store view (``tests.support.claims.StoreView``) read from one scan of the table;
``assert_all_counters_match`` checks every counter, guard and claim of a store against each other.
"""

from __future__ import annotations

import copy
import importlib
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import moto.dynamodb.models as dynamodb_models
import pytest
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.utilities import bytesize

from mci.adapters import dynamodb_items as items
from mci.adapters.dynamodb_batches import batch_get
from mci.adapters.dynamodb_claims import HOLDER_PREFIX, claim_from_item
from mci.domain.claims import ACTIVE_STATES, Claim, Decision
from mci.domain.commands import AddCustomer, Cancellation, ClaimCustomer, Review, ReviewDecision, Submission
from mci.domain.consent_decision import PageStatus
from mci.domain.customers_page import CustomersPageQuery
from mci.domain.expiry import Sweep, SweepReport
from mci.domain.lifecycle import Lifecycle
from mci.domain.principal import OPERATIONS_PARTNER_ID, Principal
from mci.domain.reference import ReferenceData
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

OPERATIONS_PARTNER = OPERATIONS_PARTNER_ID
OPERATIONS_ROLES = ["mci_operations"]
TABLE = "ClaimsTable"
ITEM_SIZE_LIMIT = 405_000  # moto's (DynamoDB's 400 KB, as moto measures it)
CURSOR_KEY = b"memory-cursor-signing-key-not-a-secret"  # signs the in-memory Customers page's cursors


# ---------------------------------------------------------------- more customers


def numbered_tenant(n: int) -> str:
    return f"6e2d4c1a-0000-4000-9000-{n:012d}"


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

    def attention(
        self, *, cursor: str | None = None, limit: int | str | None = None, caller: Caller | None = None
    ) -> Answer:
        query = {name: str(value) for name, value in (("cursor", cursor), ("limit", limit)) if value is not None}
        return (caller or self.partner).call(
            "attention_items", "GET", "/attention-items", route_key="GET /attention-items", query=query or None
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


# ---------------------------------------------------------------- moto: lean transactions and item sizes


class TouchedPartitionsBackup:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend, to make its transactions cheap.

    moto 5.2 backs up a whole table with ``copy.deepcopy`` once per item of every TransactWriteItems
    call, so it can restore the table if the transaction is cancelled. That costs ~0.2 s per
    transaction once a table holds reference data, claims and stream records, and dominates these
    tests. A transaction can only change the partitions it names, so this backup deep-copies those and
    shares the rest: the same rollback for everything the transaction can touch, in a few
    microseconds. Only for single-threaded tests (moto takes no lock either way).
    """

    def __init__(self) -> None:
        self.touched: dict[str, set[Any]] = {}

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            return self._backup(value)
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def _backup(self, table: Table) -> Table:
        clone = copy.copy(table)
        clone.items = defaultdict(dict, table.items)  # a dict copy reuses the stored hashes: no DynamoType hashing
        for hash_value in self.touched.get(table.name, set()):
            if hash_value in table.items:
                clone.items[hash_value] = copy.deepcopy(table.items[hash_value])
        if table.stream_shard is not None:
            shard = copy.copy(table.stream_shard)
            shard.items = list(table.stream_shard.items)
            clone.stream_shard = shard
        return clone

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = DynamoDBBackend.transact_write_items
        backup = self

        def transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
            backup.touched = {}
            for item in transact_items:
                for operation in item.values():
                    table = backend.tables.get(operation.get("TableName"))
                    key = operation.get("Key") or operation.get("Item") or {}
                    if table is not None and table.hash_key_attr in key:
                        backup.touched.setdefault(table.name, set()).add(DynamoType(key[table.hash_key_attr]))
            original(backend, transact_items)

        monkeypatch.setattr(dynamodb_models, "copy", self)
        monkeypatch.setattr(DynamoDBBackend, "transact_write_items", transact_write_items)


def _item_init(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]) -> None:
    """moto's ``Item.__init__`` with the 400 KB check done once per item.

    moto sets attributes one by one on a ``LimitedSizeDict`` that re-measures the whole item at every
    set, which is quadratic in the number of attributes and dominates writing thousands of claims.
    Same attributes, same limit, same error.
    """
    self.hash_key = hash_key
    self.range_key = range_key
    values = {key: DynamoType(value) for key, value in attrs.items()}
    if sum(bytesize(key) + value.size() for key, value in values.items()) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    self.attrs = LimitedSizeDict()
    dict.update(self.attrs, values)


def lean_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's DynamoDB cheaper without changing what it answers (single-threaded tests only).

    Transactions back up only the partitions they touch (``TouchedPartitionsBackup``) and new items are
    measured once against the 400 KB limit (``_item_init``).
    """
    TouchedPartitionsBackup().install(monkeypatch)
    monkeypatch.setattr(Item, "__init__", _item_init)


# ---------------------------------------------------------------- store views


class TableSnapshot:
    """Every counter, guard and claim of the claims table, read with one scan (a fresh table per test)."""

    def __init__(self, client: DynamoDBClient, table_name: str = TABLE) -> None:
        self.counters: dict[tuple[str, str], StoredCounter] = {}
        self.guards: dict[tuple[str, str, str], str] = {}
        self.claims: list[Claim] = []
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        for page in client.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
            for raw in page["Items"]:
                self._add(raw)

    def without_versions(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every item by key, without the write counters (``version`` of claims and counters)."""
        return {key: {k: v for k, v in values.items() if k != "version"} for key, values in self.items.items()}

    def _add(self, raw: dict[str, Any]) -> None:
        values = items.deserialize(raw)
        pk, sk = str(values["PK"]), str(values["SK"])
        self.items[(pk, sk)] = values
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
        claim_numbers, other_numbers = itertools.count(1), itertools.count(1)
        # the same ids in every run, so two runs can be compared item by item
        self.nominations.new_id = lambda: f"claim-{next(claim_numbers):04d}"
        self.requests.new_id = lambda: f"id-{next(other_numbers):04d}"
        self.lifecycle = Lifecycle(claims=self.claims, clock=self.clock, sleep=lambda _: None)
        self.page = CustomersPageQuery(
            reference=self.reference, claims=self.claims, now=self.clock.now, cursor_key=CURSOR_KEY
        )
        self.sweeper = Sweep(
            claims=self.claims,
            due=self.claims,
            mailer=self.mailer,
            clock=self.clock,
            engagement_names=lambda ids: {e: self.reference.engagements[e].name for e in ids},
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
