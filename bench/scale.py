"""Scale: a bulk nomination driven through the real use cases, its capacity per operation, the outbox drain.

``drive`` adds ``customers`` numbered customers (one engagement each, one partner, by domain) with
``concurrency`` threads through the real ``Nominations.add_customer``, then sends each claim's first
consent request through the real ``ConsentRequesting.request``, on the real repositories over DynamoDB Local
(moto in smoke mode). Every DynamoDB call asks for ``ReturnConsumedCapacity=INDEXES``: the units the
engine reports (DynamoDB Local's own accounting; moto's are not DynamoDB's), the items each write
names, the partition keys it writes (table, GSI1 and DueIndex shards), retries, throttles and
cancelled transactions are counted per operation. Neither DynamoDB Local nor moto throttles: the
throttles counted here are always 0, and the programme's
figures are extrapolated on paper (docs/scaling.md) from the per-operation units measured here.

The consent emails go to a mailer that only records them. How SES's sending rate spreads a burst of
them is ``drain``: a deterministic model, second by second, of the send path and the outbox (a consent
email SES throttles stays written as pending, the request answers 503, and the sweep, every 5 minutes,
redelivers the emails pending for at least ``CONSENT_EMAIL_RETRY``, at most its batch per run).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.common import median, ms, percentile

# What the template and the domain set (checked by tests/unit/test_bench_scale.py against the sources).
ADD_ROUTE_RATE = 20  # POST /customers: ThrottlingRateLimit (burst 40)
CONSENT_ROUTE_RATE = 10  # POST /claims/{claim_id}/consent-requests: ThrottlingRateLimit (burst 20)
SWEEP_EVERY_SECONDS = 300  # ExpireClaimsFunction: rate(5 minutes)
SWEEP_BATCH = 500  # Sweep.batch_size
RETRY_AFTER_SECONDS = 300  # mci.domain.claims.CONSENT_EMAIL_RETRY
SES_CALL_SECONDS = 0.05  # one SendEmail call's latency: the sweep sends one after the other
SES_RATES = (14, 200)  # the account's maximum send rate per second: a new production account, a raised one
BULK = 10_000  # the bulk nomination: 10,000 customers in a minute
BULK_SECONDS = 60
TABLE = "ClaimsTable"
CAPACITY_OPERATIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
    }
)


# ---------------------------------------------------------------- the meter

KB = 1024
READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
READ_UNIT = 4 * KB


def attribute_size(value: Mapping[str, Any]) -> int:
    """Bytes DynamoDB bills for one attribute value (its documented sizing rules, numbers approximated)."""
    (kind, inner), *_ = value.items()
    if kind in {"S", "B"}:
        return len(inner.encode() if isinstance(inner, str) else inner)
    if kind == "N":
        return 1 + (len(str(inner).lstrip("-").replace(".", "")) + 1) // 2
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in inner)
    return sum(len(str(v).encode()) for v in inner)  # SS, NS, BS


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / READ_UNIT)) * (1.0 if consistent else 0.5)


@dataclass
class OperationMeter:
    """What one use case cost, over all its calls."""

    calls: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    rcu: float = 0.0
    wcu: float = 0.0
    index_wcu: Counter[str] = field(default_factory=Counter)
    items_written: int = 0
    largest_item_written: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    keys_written: Counter[str] = field(default_factory=Counter)  # "table PK", "GSI1 ..." and "DueIndex ..."
    keys_read: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    pending_updates: list[tuple[str, str]] = field(default_factory=list)  # keys whose size is known at the end
    engine: Counter[str] = field(default_factory=Counter)  # units the engine reported: "read table", "write GSI1"...


class CapacityMeter:
    """Counts, per use case, every DynamoDB request of ``client``, what it reads and writes and their units.

    Two accountings. The engine's: every call asks ``ReturnConsumedCapacity=INDEXES`` and DynamoDB Local
    answers with its own units per table and index (``engine_units_per_call``; the figures docs/scaling.md
    extrapolates). Ours, from the sizes of the items, as a cross-check: a write 1 unit per KB (2 in a
    transaction), each index whose key a put item carries 1 more per KB (projection ALL); a strongly
    consistent read 1 unit per 4 KB, an eventually consistent one half; an ``Update`` or ``Delete`` sized
    by the item as it is at the end of the run (``finish``). Ours leaves out what an index pays when a
    key moves (a delete and a put) and so is lower for writes that move a claim's due time.
    """

    def __init__(self, client: Any) -> None:
        self.operations: dict[str, OperationMeter] = {}
        self.engine_units = 0.0
        self._current = threading.local()
        self._lock = threading.Lock()
        client.meta.events.register("provide-client-params.dynamodb", self._ask)
        client.meta.events.register("before-call.dynamodb", self._sent)
        client.meta.events.register("after-call.dynamodb", self._seen)

    @contextmanager
    def operation(self, name: str) -> Iterator[None]:
        self._current.name = name
        started = time.perf_counter()
        try:
            yield
        finally:
            self._current.name = None
            with self._lock:
                meter = self.operations.setdefault(name, OperationMeter())
                meter.calls += 1
                meter.latencies.append(time.perf_counter() - started)

    def finish(self, sizes: Mapping[tuple[str, str], int]) -> None:
        """Size the updated and deleted items by what the table holds at the end (``sizes``: (PK, SK) -> bytes)."""
        for meter in self.operations.values():
            for key in meter.pending_updates:
                meter.wcu += 2 * write_units(sizes.get(key, KB))
            meter.pending_updates.clear()

    def _meter(self) -> OperationMeter | None:
        name = getattr(self._current, "name", None)
        return None if name is None else self.operations.setdefault(name, OperationMeter())

    def _ask(self, params: dict[str, Any], model: Any = None, **_: Any) -> None:
        if model is not None and model.name in CAPACITY_OPERATIONS:
            params.setdefault("ReturnConsumedCapacity", "INDEXES")

    def _sent(self, params: dict[str, Any], model: Any = None, **_: Any) -> None:
        body = params.get("body") or {}
        if isinstance(body, bytes | str):
            body = json.loads(body or "{}")
        self._current.body = body
        with self._lock:
            meter = self._meter()
            if meter is None:
                return
            meter.requests[model.name] += 1
            self._writes(meter, model.name, body)

    def _writes(self, meter: OperationMeter, operation: str, body: Mapping[str, Any]) -> None:
        transactional = operation == "TransactWriteItems"
        actions: list[tuple[str, Mapping[str, Any]]] = []
        if transactional:
            actions = [(kind, action) for entry in body.get("TransactItems", []) for kind, action in entry.items()]
        elif operation in {"PutItem", "UpdateItem", "DeleteItem"}:
            actions = [(operation.removesuffix("Item"), body)]
        for kind, action in actions:
            if kind == "Put":
                item = action.get("Item", {})
                size = item_size(item)
                meter.wcu += write_units(size) * (2 if transactional else 1)
                meter.largest_item_written = max(meter.largest_item_written, size)
                meter.items_written += 1
                for attribute, label in (("PK", "table"), ("GSI1PK", "GSI1"), ("due_shard", "DueIndex")):
                    key = _pk(item, attribute)
                    if key is not None:
                        meter.keys_written[f"{label} {key}"] += 1
                        if label != "table":
                            meter.index_wcu[label] += write_units(size)
            elif kind in {"Update", "Delete"}:
                key = action.get("Key", {})
                meter.items_written += 1
                meter.keys_written[f"table {_pk(key, 'PK')}"] += 1
                meter.pending_updates.append((str(_pk(key, "PK")), str(_pk(key, "SK"))))

    def _seen(self, parsed: dict[str, Any], model: Any = None, **_: Any) -> None:
        body: Mapping[str, Any] = getattr(self._current, "body", {}) or {}
        with self._lock:
            meter = self._meter()
            if meter is None:
                return
            meter.retries += int((parsed.get("ResponseMetadata") or {}).get("RetryAttempts", 0))
            code = (parsed.get("Error") or {}).get("Code")
            if code:
                meter.errors[code] += 1
            capacity = parsed.get("ConsumedCapacity") or []
            kind = "read" if model.name in READS else "write"
            for entry in capacity if isinstance(capacity, list) else [capacity]:
                self.engine_units += float(entry.get("CapacityUnits", 0.0))
                meter.engine[f"{kind} table"] += float((entry.get("Table") or {}).get("CapacityUnits", 0.0))
                for index, units in (entry.get("GlobalSecondaryIndexes") or {}).items():
                    meter.engine[f"{kind} {index}"] += float(units.get("CapacityUnits", 0.0))
            self._reads(meter, model.name, body, parsed)

    def _reads(self, meter: OperationMeter, operation: str, body: Mapping[str, Any], parsed: Mapping[str, Any]) -> None:
        if operation == "BatchGetItem":
            for table, found in (parsed.get("Responses") or {}).items():
                consistent = bool(((body.get("RequestItems") or {}).get(table) or {}).get("ConsistentRead"))
                for item in found:
                    meter.rcu += read_units(item_size(item), consistent)
                    meter.keys_read[f"table {_pk(item, 'PK')}"] += 1
        elif operation == "GetItem":
            key = body.get("Key", {})
            meter.keys_read[f"table {_pk(key, 'PK')}"] += 1
            item = parsed.get("Item")
            meter.rcu += read_units(item_size(item) if item else 0, bool(body.get("ConsistentRead")))
        elif operation == "Query":
            total = sum(item_size(item) for item in parsed.get("Items", []))
            meter.rcu += read_units(total, bool(body.get("ConsistentRead")))


def _pk(item: Mapping[str, Any], attribute: str) -> str | None:
    value = item.get(attribute) or {}
    return str(value.get("S")) if isinstance(value, Mapping) and "S" in value else None


def table_sizes(client: Any, table: str) -> dict[tuple[str, str], int]:
    """(PK, SK) -> bytes of every item of the (small) bench table."""
    sizes: dict[tuple[str, str], int] = {}
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            sizes[(str(_pk(item, "PK")), str(_pk(item, "SK")))] = item_size(item)
    return sizes


# ---------------------------------------------------------------- the bulk


class RecordingMailer:
    """The consent emails, recorded with the moment each was handed over (no SES: ``drain`` models it)."""

    def __init__(self) -> None:
        self.sent: list[float] = []
        self._lock = threading.Lock()

    def send(self, message: Any) -> str:
        with self._lock:
            self.sent.append(time.monotonic())
            return f"bench-{len(self.sent)}"


def reference_data(customers: int) -> dict[str, Any]:
    from tests.support.numbered_customers import numbered_customers
    from tests.support.reference import demo_json

    data = demo_json()
    numbered = numbered_customers(range(1, customers + 1))
    data["customers"] += numbered["customers"]
    data["domains"] += numbered["domains"]
    return data


def _engine(backend: str) -> tuple[Any, Callable[[], None]]:
    from bench import sweep

    return sweep._dynamodb_local() if backend == "dynamodb_local" else sweep._moto()


def drive(*, customers: int, concurrency: int, backend: str, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Add ``customers`` customers, then request each one's consent, ``concurrency`` at a time."""
    from tests.support.dynamodb_local import Unavailable

    try:
        client, close = _engine(backend)
    except Unavailable as missing:
        progress(f"  scale: DynamoDB Local unavailable ({missing}); moto instead")
        backend = f"moto (DynamoDB Local unavailable: {missing})"
        client, close = _engine("moto")
    try:
        return _drive(client, customers=customers, concurrency=concurrency, backend=backend, progress=progress)
    finally:
        close()


def _use_cases(client: Any, customers: int) -> tuple[Any, Any, RecordingMailer]:
    """The table with the demo data and ``customers`` numbered customers; the real use cases over it."""
    from local.cloudformation import create_tables
    from mci.adapters.dynamodb_claims import DynamoDBClaimRepository
    from mci.adapters.dynamodb_lookups import DynamoDBLookups
    from mci.adapters.dynamodb_reference import DynamoDBReferenceRepository
    from mci.domain.clock import FixedClock
    from mci.domain.consent import ConsentRequesting
    from mci.domain.nomination import Nominations
    from mci.domain.outbox import ConsentOutbox
    from mci.domain.reference import ReferenceData
    from tests.support.reference import NOW

    create_tables(client)
    reference = DynamoDBReferenceRepository(client, TABLE)
    data = reference_data(customers)
    for start in range(0, customers + 1, 500):  # the model caps each list; load in slices
        part = dict(data)
        part["customers"] = data["customers"][start : start + 500]
        part["domains"] = data["domains"][start : start + 500]
        reference.save(ReferenceData.model_validate(part))
    claims = DynamoDBClaimRepository(client, TABLE)
    lookups = DynamoDBLookups(client, TABLE)
    clock = FixedClock(NOW)
    mailer = RecordingMailer()
    nominations = Nominations(reference=reference, claims=claims, clock=clock, lookups=lookups)
    outbox = ConsentOutbox(claims, mailer, clock, lookups, public_base_url="https://consent.example")
    consent = ConsentRequesting(claims=claims, clock=clock, lookups=lookups, outbox=outbox)
    return nominations, consent, mailer


def _drive(
    client: Any, *, customers: int, concurrency: int, backend: str, progress: Callable[[str], None]
) -> dict[str, Any]:
    from bench.scenarios import FIRST_REQUEST
    from mci.domain.commands import AddCustomer, ConsentRequest
    from mci.domain.principal import Principal
    from tests.support.numbered_customers import numbered_body
    from tests.support.reference import CONTOSO, MIGRATE

    nominations, consent, mailer = _use_cases(client, customers)
    partner = Principal(partner_id=CONTOSO, roles=frozenset({"incentives_user"}), user_id="bench")
    meter = CapacityMeter(client)
    failures: Counter[str] = Counter()

    def add(number: int) -> str | None:
        command = AddCustomer.model_validate(numbered_body(number, MIGRATE))
        try:
            with meter.operation("add_customer"):
                (claim,) = nominations.add_customer(partner, command)
        except Exception as error:  # counted and reported, the bulk goes on
            failures[f"add: {type(error).__name__}"] += 1
            return None
        return claim.claim_id

    def request(claim_id: str) -> None:
        try:
            with meter.operation("consent_send"):
                consent.request(partner, claim_id, ConsentRequest.model_validate(FIRST_REQUEST))
        except Exception as error:  # counted and reported
            failures[f"consent: {type(error).__name__}"] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        claim_ids = [c for c in pool.map(add, range(1, customers + 1)) if c is not None]
        added = time.monotonic()
        list(pool.map(request, claim_ids))
    finished = time.monotonic()
    meter.finish(table_sizes(client, TABLE))
    progress(
        f"  scale: {len(claim_ids)} adds in {added - started:.1f} s, {len(mailer.sent)} consent requests in "
        f"{finished - added:.1f} s on {backend}, {concurrency} at a time"
    )
    operations = {name: _figures(meter.operations[name]) for name in ("add_customer", "consent_send")}
    return {
        "backend": backend,
        "customers": customers,
        "concurrency": concurrency,
        "added": len(claim_ids),
        "consent_emails": len(mailer.sent),
        "failures": dict(failures),
        "add_seconds": round(added - started, 2),
        "consent_seconds": round(finished - added, 2),
        "engine_capacity_units": round(meter.engine_units, 2),
        "operations": operations,
    }


def _figures(meter: OperationMeter) -> dict[str, Any]:
    calls = max(meter.calls, 1)
    hottest_written = _hottest(meter.keys_written)
    return {
        "calls": meter.calls,
        "requests_per_call": {name: round(n / calls, 2) for name, n in sorted(meter.requests.items())},
        "rcu_per_call": round(meter.rcu / calls, 2),
        "wcu_per_call": round(meter.wcu / calls, 2),
        "index_wcu_per_call": {name: round(n / calls, 2) for name, n in sorted(meter.index_wcu.items())},
        "items_written_per_call": round(meter.items_written / calls, 2),
        "largest_item_written_bytes": meter.largest_item_written,
        "engine_units_per_call": {name: round(n / calls, 2) for name, n in sorted(meter.engine.items()) if n},
        "retries": meter.retries,
        "throttles": sum(n for code, n in meter.errors.items() if "Throttl" in code or "Throughput" in code),
        "errors": dict(meter.errors),
        "hottest_keys_written": hottest_written,
        "hottest_keys_read": _hottest(meter.keys_read, kinds=("table",)),
        "p50_ms": ms(median(meter.latencies)),
        "p99_ms": ms(percentile(meter.latencies, 0.99)),
    }


def _hottest(keys: Counter[str], kinds: tuple[str, ...] = ("table", "GSI1", "DueIndex")) -> dict[str, Any]:
    """Per kind of key: the key written (or read) most, how often, and how many distinct keys there were."""
    found: dict[str, Any] = {}
    for kind in kinds:
        mine = Counter({k: n for k, n in keys.items() if k.startswith(f"{kind} ")})
        if mine:
            (key, count), *_ = mine.most_common(1)
            found[kind] = {"key": key.split(" ", 1)[1], "count": count, "distinct": len(mine)}
    return found


# ---------------------------------------------------------------- the outbox, modelled


@dataclass(frozen=True)
class Drain:
    """How a burst of consent requests becomes emails at SES's rate (one row of docs/scaling.md)."""

    emails: int
    offered_per_second: float  # consent requests reaching the function per second
    ses_per_second: int
    sent_on_request: int
    throttled_to_outbox: int
    sweep_runs: int
    last_email_seconds: float  # from the first request until the last email is accepted by SES
    last_request_seconds: float


def drain(
    emails: int,
    offered_per_second: float,
    ses_per_second: int,
    *,
    sweep_every: int = SWEEP_EVERY_SECONDS,
    sweep_batch: int = SWEEP_BATCH,
    retry_after: int = RETRY_AFTER_SECONDS,
    call_seconds: float = SES_CALL_SECONDS,
) -> Drain:
    """Second by second: requests send while SES has quota that second; the rest wait in the outbox.

    The quota is SES's maximum send rate (per second, shared by everything the account sends). A
    request beyond it is answered 503 and its email stays pending (the caller is assumed not to
    retry: the worst case for the outbox). The sweep runs every ``sweep_every`` seconds (the first
    a full period after the burst starts), takes at most ``sweep_batch`` due claims (pending for at
    least ``retry_after``, oldest first) and sends them one after the other, one SES call at a time
    (``call_seconds`` each); a send that finds no quota fails and waits for a later run.
    """
    if emails <= 0:
        return Drain(0, offered_per_second, ses_per_second, 0, 0, 0, 0.0, 0.0)
    arrivals = [math.floor(i / offered_per_second) for i in range(emails)]  # second of each request
    per_second_calls = max(1, int(1 / call_seconds))
    used: Counter[int] = Counter()
    pending: list[int] = []  # seconds the throttled emails were written
    sent_on_request = 0
    last_sent = 0.0
    for second in arrivals:
        if used[second] < ses_per_second:
            used[second] += 1
            sent_on_request += 1
            last_sent = max(last_sent, second + 1.0)
        else:
            pending.append(second)
    throttled = len(pending)
    runs = 0
    run_at = sweep_every
    while pending:
        runs += 1
        ready = [at for at in pending if at + retry_after <= run_at]
        due, kept = ready[:sweep_batch], [at for at in pending if at + retry_after > run_at] + ready[sweep_batch:]
        second, calls = run_at, 0
        for at in due:
            if calls == per_second_calls:
                second, calls = second + 1, 0
            calls += 1
            if used[second] < ses_per_second:
                used[second] += 1
                last_sent = max(last_sent, second + 1.0)
            else:
                kept.append(at)
        pending = sorted(kept)
        run_at += sweep_every
        if runs > 10_000:
            raise RuntimeError("the outbox never drains")
    return Drain(
        emails=emails,
        offered_per_second=offered_per_second,
        ses_per_second=ses_per_second,
        sent_on_request=sent_on_request,
        throttled_to_outbox=throttled,
        sweep_runs=runs,
        last_email_seconds=last_sent,
        last_request_seconds=float(arrivals[-1] + 1),
    )


def drains(emails: int = BULK) -> list[dict[str, Any]]:
    """The bulk's consent emails as the API lets them through, and with its throttle raised for the bulk."""
    rows = []
    for offered in (CONSENT_ROUTE_RATE, emails / BULK_SECONDS):
        for ses in SES_RATES:
            rows.append(asdict(drain(emails, offered, ses)))
    return rows


# ---------------------------------------------------------------- the section


def measure(
    *, customers: int, concurrency: int, backend: str, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    found = drive(customers=customers, concurrency=concurrency, backend=backend, progress=progress)
    throttles = sum(op["throttles"] for op in found["operations"].values())
    bulk_rows = drains()
    return {
        "what": f"a bulk nomination of {customers} customers and their consent requests through the real use "
        f"cases on {backend}, {concurrency} at a time; the outbox drain of {BULK:,} consent emails, modelled",
        "target": "every add and consent request succeeds; capacity per operation measured; DynamoDB Local "
        "never throttles (throttles 0 by construction, extrapolated in docs/scaling.md)",
        **found,
        "throttles": throttles,
        "engine_throttles": "DynamoDB Local does not throttle; moto neither" if throttles == 0 else "",
        "bulk": {"emails": BULK, "seconds": BULK_SECONDS},
        "drain": bulk_rows,
        "met": not found["failures"] and found["added"] == customers and found["consent_emails"] == customers,
    }
