"""Sweep scaling: a table of many claims of which 1 % are due, swept through the DueIndex and by a Scan.

One run of the real ``Sweep`` over the real ``DynamoDBClaimRepository`` expires every due claim (its
batch size set above the number due); every item the engine reads (``ScannedCount`` of each Query and
Scan, from botocore's ``after-call`` event) is counted. Then a ``DueClaims`` that finds them by a Scan
of the table (one parallel full pass, the cheapest a Scan can do) finds the same due claims; what the
sweep writes next would be the same, so only finding is timed for both. The full run uses DynamoDB
Local (the real engine, much faster than moto at this size); the smoke run uses moto.

Due claims are whole claims (with their limit counter and guard, so expiring them is a real
transaction). The other 99 % carry only what the index and a Scan look at: half are active with a due
time in the future (in the sparse index, but after ``now``), half are finished (out of the index).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bench.common import REGION, ms, ratio

TARGET_ITEMS_PER_DUE = 1.05
TABLE = "ClaimsTable"
SCAN_SEGMENTS = 4


class NoMail:
    """The sweep's mailer: nothing in this table asks for a reminder, so nothing is sent."""

    def send(self, message: Any) -> str:
        return "bench"


class ItemsRead:
    """Items the engine read, per operation (``ScannedCount``), and requests, from ``after-call``."""

    def __init__(self, client: Any) -> None:
        self.items: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        client.meta.events.register("after-call.dynamodb", self._seen)

    def _seen(self, parsed: dict[str, Any], model: Any = None, **_: Any) -> None:
        self.requests[model.name] += 1
        if "ScannedCount" in parsed:
            self.items[model.name] += int(parsed["ScannedCount"])
        elif model.name == "GetItem" and "Item" in parsed:
            self.items[model.name] += 1
        elif model.name == "BatchGetItem":
            self.items[model.name] += sum(len(v) for v in parsed.get("Responses", {}).values())

    def reset(self) -> None:
        self.items.clear()
        self.requests.clear()


class ScanDueClaims:
    """``DueClaims`` by a parallel Scan of the whole table with a filter on ``due_at``."""

    def __init__(self, client: Any, table: str, segments: int = SCAN_SEGMENTS) -> None:
        self._client = client
        self._table = table
        self._segments = segments

    def due_claims(self, now: datetime, limit: int) -> list[Any]:
        from mci.adapters.dynamodb_claims import claim_from_item
        from mci.domain.clock import isoformat

        def segment(number: int) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "FilterExpression": "attribute_exists(due_at) AND due_at <= :now",
                "ExpressionAttributeValues": {":now": {"S": isoformat(now)}},
                "Segment": number,
                "TotalSegments": self._segments,
            }
            while True:
                page = self._client.scan(**kwargs)
                found.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return found
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        with ThreadPoolExecutor(max_workers=self._segments) as pool:
            items = [item for part in pool.map(segment, range(self._segments)) for item in part]
        return [claim_from_item(item) for item in items[:limit]]


class TimedDue:
    """A ``DueClaims`` that keeps how long finding the due claims took (the part index and Scan differ in)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def due_claims(self, now: datetime, limit: int) -> list[Any]:
        started = time.perf_counter()
        try:
            found: list[Any] = self.inner.due_claims(now, limit)
            return found
        finally:
            self.seconds += time.perf_counter() - started


# ---------------------------------------------------------------- the table


def due_items(count: int, now: datetime) -> list[dict[str, Any]]:
    """Claims a consent window and a day old (overdue), each with its limit counter and guard."""
    from mci.adapters import dynamodb_items as items
    from mci.adapters.dynamodb_claims import HOLDER_PREFIX, claim_item
    from mci.domain.clock import isoformat
    from tests.support.claims import new_claim

    written: list[dict[str, Any]] = []
    for number in range(count):
        key = f"tenant_id:bench-due-{number:06d}"
        claim = new_claim(
            "p-contoso-partners",
            "e-azure-migrate",
            customer_key=key,
            at=now - timedelta(days=31),
            claim_id=f"c-due-{number:06d}",
        )
        deadline = isoformat(claim.consent_deadline)
        holder = {"M": {"partner_id": {"S": claim.partner_id}, "due": {"S": deadline}}}
        written.append(claim_item(claim))
        written.append(
            {
                **items.counter_key(claim.engagement_id, key),
                "type": {"S": "counter"},
                "active_count": {"N": "1"},
                "version": {"N": "1"},
                HOLDER_PREFIX + claim.claim_id: holder,
            }
        )
        written.append(
            {
                **items.guard_key(claim.engagement_id, key, claim.partner_id),
                "type": {"S": "guard"},
                "claim_id": {"S": claim.claim_id},
                "due": {"S": deadline},
            }
        )
    return written


def other_items(start: int, stop: int, now: datetime) -> Iterator[dict[str, Any]]:
    """Claims not due: even ones active and due within the next month, odd ones finished."""
    from mci.adapters import dynamodb_items as items
    from mci.domain.clock import isoformat

    for number in range(start, stop):
        claim_id = f"c-{number:08d}"
        item: dict[str, Any] = {
            **items.claim_key(claim_id),
            "type": {"S": "claim"},
            "claim_id": {"S": claim_id},
            "partner_id": {"S": f"p-partner-{number % 50}"},
            "engagement_id": {"S": "e-azure-migrate"},
        }
        if number % 2 == 0:
            item["state"] = {"S": "pending_consent"}
            item["due_shard"] = {"S": items.due_shard(claim_id)}
            item["due_at"] = {"S": isoformat(now + timedelta(days=1 + number % 29, minutes=number % 1440))}
        else:
            item["state"] = {"S": "completed"}
        yield item


def write(client: Any, table: str, generated: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in generated]}
    for _attempt in range(20):
        pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        if not pending:
            return
        time.sleep(0.05)
    raise RuntimeError("the table kept items unprocessed")


def fill(client: Any, claims: int, due: int, now: datetime, threads: int) -> None:
    chunks: list[Callable[[], list[dict[str, Any]]]] = []
    for start in range(0, claims - due, 25):
        chunks.append(partial(_others, start, min(start + 25, claims - due), now))
    due_written = due_items(due, now)
    for start in range(0, len(due_written), 24):
        chunks.append(partial(_slice, due_written, start, start + 24))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda build: write(client, TABLE, build()), chunks))


def _others(start: int, stop: int, now: datetime) -> list[dict[str, Any]]:
    return list(other_items(start, stop, now))


def _slice(found: list[dict[str, Any]], start: int, stop: int) -> list[dict[str, Any]]:
    return found[start:stop]


# ---------------------------------------------------------------- backends


@dataclass
class Table:
    """A filled table on a running engine, until ``close``."""

    client: Any
    backend: str
    claims: int
    due: int
    fill_seconds: float
    close: Callable[[], None]


def _dynamodb_local() -> tuple[Any, Callable[[], None]]:
    from tests.support import dynamodb_local as engine

    server = engine.start()
    return engine.client(server.endpoint, pool=16, attempts=5), server.stop


def _moto() -> tuple[Any, Callable[[], None]]:
    import boto3
    import pytest
    from moto import mock_aws

    from local.moto_patches import lean_moto

    patch = pytest.MonkeyPatch()
    lean_moto(patch)  # moto deep-copies whole tables per transaction otherwise
    mock = mock_aws()
    mock.start()

    def close() -> None:
        mock.stop()
        patch.undo()

    return boto3.session.Session().client("dynamodb", region_name=REGION), close


def prepare(*, claims: int, backend: str, progress: Callable[[str], None] = print) -> Table:
    """Start the engine, create the template's tables and write the claims (the slow part)."""
    from local.cloudformation import create_tables
    from tests.support.reference import NOW

    due = max(1, claims // 100)
    client, close = _dynamodb_local() if backend == "dynamodb_local" else _moto()
    try:
        create_tables(client)
        started = time.monotonic()
        fill(client, claims, due, NOW, threads=8 if backend == "dynamodb_local" else 1)
        filled = time.monotonic() - started
    except BaseException:
        close()
        raise
    progress(f"  sweep: {claims} claims written to {backend} ({filled:.0f} s)")
    return Table(client, backend, claims, due, filled, close)


# ---------------------------------------------------------------- the measurement


def _one_run(sweep: Any) -> tuple[int, int, float]:
    started = time.perf_counter()
    report = sweep.run()
    return report.examined, report.expired, time.perf_counter() - started


def measure(*, claims: int, backend: str, progress: Callable[[str], None] = print) -> dict[str, Any]:
    return measure_table(prepare(claims=claims, backend=backend, progress=progress))


def measure_table(table: Table) -> dict[str, Any]:
    """Sweep the prepared table through the index, then find the same due claims by a Scan; close it."""
    try:
        return _measure(table)
    finally:
        table.close()


def _measure(table: Table) -> dict[str, Any]:
    from mci.adapters.dynamodb_claims import DynamoDBClaimRepository
    from mci.domain.clock import FixedClock
    from mci.domain.expiry import Sweep
    from tests.support.reference import NOW

    client, due, claims, backend, filled = table.client, table.due, table.claims, table.backend, table.fill_seconds
    reads = ItemsRead(client)
    repository = DynamoDBClaimRepository(client, TABLE)
    clock = FixedClock(NOW)

    index_due = TimedDue(repository)
    # One run finds every due claim (batch size above the number due), for both ways of finding them.
    index_sweep = Sweep(claims=repository, due=index_due, mailer=NoMail(), clock=clock, batch_size=due + 1)
    examined, expired, index_seconds = _one_run(index_sweep)
    index_items = reads.items["Query"]
    index_requests = reads.requests["Query"]
    if expired != due:
        raise RuntimeError(f"the index sweep expired {expired} claims, {due} were due")

    # The Scan finds the same due claims (the writes that follow would be the same): one full pass.
    # It runs second, on an engine the index sweep has warmed up: the comparison favours the Scan.
    fill(client, due, due, NOW, threads=4)  # the due claims (and their counters) as they were
    reads.reset()
    scan_due = TimedDue(ScanDueClaims(client, TABLE))
    scan_found = len(scan_due.due_claims(NOW, due + 1))
    scan_items = reads.items["Scan"]
    scan_requests = reads.requests["Scan"]
    if scan_found != due:
        raise RuntimeError(f"the Scan found {scan_found} due claims, {due} were due")
    per_due = round(index_items / due, 4)
    return {
        "what": "items the engine reads per due claim: sweep through the sparse DueIndex vs the same sweep by Scan",
        "target": f"items read per due claim <= {TARGET_ITEMS_PER_DUE}",
        "backend": backend,
        "claims": claims,
        "due": due,
        "fill_seconds": round(filled, 1),
        "index": {
            "items_read": index_items,
            "items_read_per_due_claim": per_due,
            "queries": index_requests,
            "examined": examined,
            "expired": expired,
            "seconds": round(index_seconds, 2),
            "finding_seconds": round(index_due.seconds, 3),
            "ms_per_due_claim": ms(index_seconds / due),
        },
        "scan": {
            "items_read": scan_items,
            "items_read_per_due_claim": round(scan_items / due, 2),
            "requests": scan_requests,
            "segments": SCAN_SEGMENTS,
            "found": scan_found,
            "finding_seconds": round(scan_due.seconds, 3),
        },
        "scan_to_index_items_ratio": ratio(scan_items, index_items),
        "scan_to_index_finding_time_ratio": ratio(scan_due.seconds, index_due.seconds),
        "met": per_due <= TARGET_ITEMS_PER_DUE,
    }
