"""The expiry sweep and reminders on moto (rule 17, issue 4 item 5).

(a) Out of 10,000 claims the sweep reads only the 100 that are due (items counted on the client).
(b) A sweep that crashes after any number of writes, then runs again, ends where one clean run ends.
(c) Each reminder is sent once; one whose email throttles is sent on the next run.
(d) Every counter still equals the active claims it counts.

Claims are written straight to the table (the adapter's ``claim_item``, stored by moto's backend as its
BatchWriteItem stores them), with the counters, guards and consent links that go with them, so thousands of
them take seconds, not minutes;
``lean_moto`` keeps moto's per-transaction table backup and per-attribute size check from dominating.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from moto.backends import get_backend
from moto.core.botocore_stubber import MockRawResponse

from local.cloudformation import create_tables, load_template
from local.lambda_runtime import FakeLambdaContext
from local.moto_patches import lean_moto
from mci.adapters import dynamodb_items as items
from mci.adapters.aws import dynamodb as service_dynamodb
from mci.adapters.aws import sesv2, sesv2_one_attempt
from mci.adapters.dynamodb_claims import DynamoDBClaimRepository, claim_item, token_item
from mci.adapters.memory import MemoryMailer
from mci.domain.claims import Claim, ClaimState, ConsentRequests
from mci.domain.clock import FixedClock, isoformat
from mci.domain.consent_token import token_hash
from mci.domain.expiry import Sweep, SweepReport
from mci.domain.ports import ClaimChange, ConsentPageContext, ConsentTokenRecord
from tests.support.claims import DynamoDBStoreView, assert_counter_matches_claims, new_claim
from tests.support.consent import ACCOUNT, FIRST_REQUEST, SesThrottle, recipients, sent_messages
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.reference import ADATUM, CONTOSO, MIGRATE, NORTHWIND, NOW, SECURITY, add_customer_body
from tests.support.store_snapshots import TableSnapshot, assert_all_counters_match, stored_claims

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "ClaimsTable"
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SCALE = 10_000  # claims in the table for the read-count test
DUE = 100  # of which due


@pytest.fixture(autouse=True)
def lean_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    lean_moto(monkeypatch)


# ---------------------------------------------------------------- claims written straight to the table


def requested(claim: Claim, at: datetime) -> Claim:
    token = f"token-{claim.claim_id}"
    return claim.transition(
        ClaimState.CONSENT_REQUESTED,
        at=at,
        actor=f"partner:{claim.partner_id}",
        reason="consent requested",
        deal_size_usd=Decimal(25000),
        consent_requests=ConsentRequests(count=1, last_sent_at=at),
        consent_token_hash=token_hash(token),
    )


def granted(claim: Claim, at: datetime) -> Claim:
    return requested(claim, at).transition(
        ClaimState.CONSENT_GRANTED,
        at=at,
        actor="customer",
        reason="consent accepted",
        submission_deadline=at + timedelta(days=90),
        consent_token_hash=None,
    )


def submitted(claim: Claim, at: datetime) -> Claim:
    return granted(claim, at).transition(ClaimState.SUBMITTED, at=at, actor="partner", reason="submitted")


def cancelled(claim: Claim, at: datetime) -> Claim:
    return claim.transition(ClaimState.CANCELLED, at=at, actor="partner", reason="not needed")


def write_claims(
    client: DynamoDBClient, claims: list[Claim], table: str = TABLE, *, through_requests: bool = False
) -> None:
    """Claims as the adapter stores them, with the counters, guards and consent links that go with them.
    ``through_requests``: sent as BatchWriteItem requests (moto checks each), not stored in its backend."""
    requests: list[Any] = [{"PutRequest": {"Item": claim_item(c)}} for c in claims]
    counters: dict[tuple[str, str], list[Claim]] = {}
    for claim in claims:
        if not claim.state.is_terminal:
            counters.setdefault((claim.engagement_id, claim.customer_key), []).append(claim)
            guard = items.serialize({"type": "guard", "claim_id": claim.claim_id, "due": due_text(claim)})
            key = items.guard_key(claim.engagement_id, claim.customer_key, claim.partner_id)
            requests.append({"PutRequest": {"Item": {**key, **guard}}})
        if claim.consent_token_hash and claim.state is ClaimState.CONSENT_REQUESTED:
            record = ConsentTokenRecord(
                token_hash=claim.consent_token_hash,
                claim_id=claim.claim_id,
                partner_id=claim.partner_id,
                expires_at=claim.consent_deadline,
                page=ConsentPageContext("en", "Partner", "Engagement", claim.friendly_name, 90),
            )
            requests.append({"PutRequest": {"Item": token_item(record)}})
    for (engagement_id, customer_key), holders in counters.items():
        values: dict[str, Any] = {"active_count": len(holders), "version": len(holders)}
        for holder in holders:
            values[f"holder#{holder.claim_id}"] = {"partner_id": holder.partner_id, "due": due_text(holder)}
        requests.append(
            {"PutRequest": {"Item": {**items.counter_key(engagement_id, customer_key), **items.serialize(values)}}}
        )
    if through_requests:
        for start in range(0, len(requests), 25):
            left = client.batch_write_item(RequestItems={table: requests[start : start + 25]})["UnprocessedItems"]
            assert not left, left
        return
    # Straight into moto's backend, as its BatchWriteItem stores them: serialising, sending and parsing 800
    # batches cost more than storing the items. What BatchWriteItem would refuse, a key twice, fails here too.
    # test_claims_stored_straight_in_moto_are_what_batch_write_item_stores holds this to the requests' result.
    stored = [request["PutRequest"]["Item"] for request in requests]
    keys = [(item["PK"]["S"], item["SK"]["S"]) for item in stored]
    assert len(set(keys)) == len(keys), "a key written twice"
    backend = get_backend("dynamodb")[ACCOUNT][client.meta.region_name]
    for item in stored:
        backend.put_item(table, item)


def due_text(claim: Claim) -> str:
    return isoformat(claim.deadline) if claim.deadline else "none"


def without_stream(client: DynamoDBClient) -> None:
    """The template's claims table without its stream: moto copies every write into a stream record, which
    costs more than the write itself at this size, and nothing here reads the stream."""
    template = copy.deepcopy(load_template())
    template["Resources"]["ClaimsTable"]["Properties"].pop("StreamSpecification")
    client.delete_table(TableName=TABLE)
    client.get_waiter("table_not_exists").wait(TableName=TABLE)
    create_tables(client, template)


def sweep_handler() -> Any:
    return importlib.import_module("functions.expire_claims.app").lambda_handler


class ItemsRead:
    """Counts the items DynamoDB hands back to one client (Query, Scan, GetItem, BatchGetItem)."""

    OPERATIONS = ("Query", "Scan", "GetItem", "BatchGetItem")

    def __init__(self, client: DynamoDBClient) -> None:
        self.client = client
        self.items: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        for operation in self.OPERATIONS:
            client.meta.events.register(f"after-call.dynamodb.{operation}", self._count)

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        self.calls[name] += 1
        if name in ("Query", "Scan"):
            self.items[name] += len(parsed.get("Items", []))
        elif name == "GetItem":
            self.items[name] += 1 if parsed.get("Item") else 0
        else:
            self.items[name] += sum(len(found) for found in parsed.get("Responses", {}).values())

    @property
    def total(self) -> int:
        return sum(self.items.values())

    def stop(self) -> None:
        for operation in self.OPERATIONS:
            self.client.meta.events.unregister(f"after-call.dynamodb.{operation}", self._count)


def partition_size(client: DynamoDBClient, partition: str) -> int:
    """How many claims one partition of the partner's tab index holds."""
    total = 0
    kwargs: dict[str, Any] = {
        "TableName": TABLE,
        "IndexName": "GSI1",
        "KeyConditionExpression": "GSI1PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": partition}},
        "Select": "COUNT",
    }
    while True:
        page = client.query(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class KnownClaimsView(DynamoDBStoreView):
    """A store view that reads the claims of a customer key by their known ids (no scan of a big table)."""

    def __init__(self, client: DynamoDBClient, claims: list[Claim], table: str = TABLE) -> None:
        super().__init__(client, table)
        self.ids: dict[tuple[str, str], list[str]] = {}
        for claim in claims:
            self.ids.setdefault((claim.engagement_id, claim.customer_key), []).append(claim.claim_id)

    def claims_of(self, engagement_id: str, customer_key: str) -> list[Claim]:
        found = stored_claims(self.client, self.ids.get((engagement_id, customer_key), []), self.table)
        return list(found.values())


# ---------------------------------------------------------------- (a) the sweep reads only what is due


def scale_world() -> tuple[list[Claim], list[Claim], list[Claim]]:
    """``SCALE`` claims: ``DUE`` of Contoso past a deadline, each sharing its counter with a live claim of
    Northwind; half of the rest live and not due (pending, consented, submitted), half ended.

    Returns (every claim, the due ones, Northwind's claims that share their counters).
    """
    due: list[Claim] = []
    for n in range(DUE):
        key, claim_id = f"tpid:{n + 1}", f"c-due-{n:05d}"
        if n % 5 == 0:  # consented 95 days ago: past its submission deadline
            made = new_claim(CONTOSO, MIGRATE, customer_key=key, at=NOW - 100 * DAY, claim_id=claim_id)
            due.append(granted(made, NOW - 95 * DAY))
        elif n % 2:  # consent requested, past its consent deadline
            made = new_claim(CONTOSO, MIGRATE, customer_key=key, at=NOW - 31 * DAY, claim_id=claim_id)
            due.append(requested(made, NOW - 30 * DAY))
        else:  # never requested, past its consent deadline
            at = NOW - 31 * DAY - n * timedelta(minutes=1)
            due.append(new_claim(CONTOSO, MIGRATE, customer_key=key, at=at, claim_id=claim_id))
    theirs = [
        new_claim(NORTHWIND, MIGRATE, customer_key=f"tpid:{n + 1}", at=NOW - DAY, claim_id=f"c-nw-{n:05d}")
        for n in range(DUE)
    ]
    others: list[Claim] = []
    for n in range(SCALE - 2 * DUE):
        at = NOW - timedelta(hours=n % 48)
        partner_id = CONTOSO if n % 2 else ADATUM
        claim = new_claim(partner_id, MIGRATE, customer_key=f"tpid:{100_000 + n}", at=at, claim_id=f"c-{n:05d}")
        if n % 2 == 0:
            claim = cancelled(claim, at)
        elif n % 17 == 0:
            claim = granted(claim, at)
        elif n % 29 == 0:
            claim = submitted(claim, at)
        others.append(claim)
    return [*due, *theirs, *others], due, theirs


def test_the_sweep_reads_only_the_due_claims_out_of_ten_thousand(
    dynamodb: DynamoDBClient, clock: FixedClock, lambda_context: Any
) -> None:
    without_stream(dynamodb)
    claims, due, theirs = scale_world()
    write_claims(dynamodb, claims)
    reads = ItemsRead(service_dynamodb())  # the client the handler's repository uses
    report = sweep_handler()({}, lambda_context)
    reads.stop()

    assert (report["examined"], report["expired"], report["failed"]) == (DUE, DUE, 0)
    assert DUE <= reads.total <= DUE + 5, (reads.items, reads.calls)
    assert set(reads.calls) <= {"Query", "GetItem", "BatchGetItem"}  # never a scan

    stored = stored_claims(dynamodb, [c.claim_id for c in due])
    for claim in due:
        after = stored[claim.claim_id]
        assert after.state is ClaimState.EXPIRED
        assert [h.to for h in after.history].count(ClaimState.EXPIRED) == 1
        assert after.history[:-1] == claim.history
        assert after.history[-1].at == claim.deadline
    assert partition_size(dynamodb, items.claims_tab_pk(CONTOSO, MIGRATE, terminal=True)) == DUE  # no other
    sample = claims[2 * DUE :: 37]
    assert stored_claims(dynamodb, [c.claim_id for c in sample]) == {c.claim_id: c for c in sample}

    view = KnownClaimsView(dynamodb, claims)
    for claim in [*due, *sample[:40]]:
        assert_counter_matches_claims(view, claim.engagement_id, claim.customer_key)
    for claim, other in zip(due, theirs, strict=True):
        counter = view.counter(MIGRATE, claim.customer_key)
        assert counter is not None
        assert (counter.active_count, counter.holders) == (1, {other.claim_id})  # only the expired one left
    assert sweep_handler()({}, lambda_context)["examined"] == 0


# ---------------------------------------------------------------- (b) crash, then run again


class Crash(Exception):
    """The sweep's Lambda dying (timeout, out of memory) or the store failing unexpectedly."""


class CrashingClaims:
    """The claim store, crashing at the apply after ``healthy`` successful ones: before its write or after it."""

    def __init__(self, inner: DynamoDBClaimRepository, healthy: int, *, after_write: bool) -> None:
        self.inner = inner
        self.healthy = healthy
        self.after_write = after_write
        self.applied = 0

    def apply(self, change: ClaimChange) -> None:
        if self.applied == self.healthy:
            if self.after_write:
                self.inner.apply(change)
            raise Crash(f"crash at apply {self.applied + 1}")
        self.inner.apply(change)
        self.applied += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def crash_world() -> list[Claim]:
    """Thirty claims: fifteen past a deadline (four sharing a counter with Northwind), seven with a reminder
    due (two with both due at once), five not due, three ended."""
    claims: list[Claim] = []

    def made(n: int, engagement_id: str, at: datetime) -> Claim:
        return new_claim(CONTOSO, engagement_id, customer_key=f"tpid:{n}", at=at, claim_id=f"c-{n:02d}")

    for n in range(1, 31):
        if n <= 8:  # past the consent deadline
            claims.append(made(n, MIGRATE, NOW - 31 * DAY + n * HOUR))
        elif n <= 12:  # consent requested, past the consent deadline
            claims.append(requested(made(n, MIGRATE, NOW - 31 * DAY), NOW - 30 * DAY + n * HOUR))
        elif n <= 15:  # consented, past the submission deadline
            claims.append(granted(made(n, MIGRATE, NOW - 100 * DAY), NOW - 95 * DAY + n * HOUR))
        elif n <= 20:  # the 7-day reminder is due, the 1-day one is not
            claims.append(made(n, SECURITY, NOW - 24 * DAY + n * HOUR))
        elif n <= 22:  # both reminders are due: one email
            claims.append(requested(made(n, SECURITY, NOW - 29 * DAY - n * HOUR), NOW - 29 * DAY))
        elif n <= 27:  # nothing due
            claims.append(made(n, MIGRATE, NOW - DAY))
        else:
            claims.append(cancelled(made(n, MIGRATE, NOW - DAY), NOW))
    claims += [
        new_claim(NORTHWIND, MIGRATE, customer_key=f"tpid:{n}", at=NOW - DAY, claim_id=f"c-nw-{n:02d}")
        for n in (1, 2, 9, 13)
    ]
    return claims


def test_claims_stored_straight_in_moto_are_what_batch_write_item_stores(dynamodb: DynamoDBClient) -> None:
    """``write_claims`` skips BatchWriteItem's request (and moto's checks of it) for speed: for a sample of every
    kind of claim it stores, the table holds the same items as when each goes through BatchWriteItem."""
    world = crash_world()
    create_tables(dynamodb, names={"ClaimsTable": "Straight", "IdempotencyTable": "StraightIdempotency"})
    create_tables(dynamodb, names={"ClaimsTable": "Requested", "IdempotencyTable": "RequestedIdempotency"})
    write_claims(dynamodb, world, "Straight")
    write_claims(dynamodb, world, "Requested", through_requests=True)
    straight, sent = TableSnapshot(dynamodb, "Straight"), TableSnapshot(dynamodb, "Requested")
    assert len(sent.items) > len(world)  # claims with their counters, guards and links
    assert straight.items == sent.items


CRASH_APPLIES = 29  # a clean run writes 15 expiries, 7 reminder marks (each in the outbox) and 7 records


def new_table(client: DynamoDBClient, name: str, claims: list[Claim]) -> DynamoDBClaimRepository:
    create_tables(client, names={"ClaimsTable": name, "IdempotencyTable": f"{name}Idempotency"})
    write_claims(client, claims, name)
    return DynamoDBClaimRepository(client, name)


def run_sweep(store: Any, due: DynamoDBClaimRepository, mailer: MemoryMailer, clock: FixedClock) -> SweepReport:
    return Sweep(claims=store, due=due, mailer=mailer, clock=clock).run()


def reminders(mailer: MemoryMailer) -> Counter[str]:
    return Counter(m.tags["claim_id"] for m in mailer.sent if m.tags.get("kind") == "consent_reminder")


@pytest.mark.parametrize("after_write", [False, True], ids=["crash before a write", "crash after a write"])
def test_a_crashed_sweep_run_again_ends_where_one_clean_run_ends(
    dynamodb: DynamoDBClient, clock: FixedClock, after_write: bool
) -> None:
    world = crash_world()
    clean = new_table(dynamodb, "CleanClaims", world)
    clean_mail = MemoryMailer()
    report = run_sweep(clean, clean, clean_mail, clock)
    assert (report.expired, report.reminded, report.failed) == (15, 7, 0)
    clean_state = TableSnapshot(dynamodb, "CleanClaims")
    assert reminders(clean_mail) == Counter({f"c-{n}": 1 for n in range(16, 23)})
    assert_all_counters_match(clean_state)
    assert sum(c.state is ClaimState.EXPIRED for c in clean_state.claims) == 15

    for healthy in (0, 1, 14, 15, 16, CRASH_APPLIES - 1):
        repository = new_table(dynamodb, f"Crash{healthy}", world)
        mailer = MemoryMailer()
        with pytest.raises(Crash):
            run_sweep(CrashingClaims(repository, healthy, after_write=after_write), repository, mailer, clock)
        rerun = run_sweep(repository, repository, mailer, clock)
        assert rerun.failed == 0
        assert run_sweep(repository, repository, mailer, clock).examined == 0  # nothing left to do

        state = TableSnapshot(dynamodb, f"Crash{healthy}")
        assert state.without_versions() == clean_state.without_versions(), healthy
        for claim in state.claims:
            assert [h.to for h in claim.history].count(ClaimState.EXPIRED) <= 1, claim.claim_id
            assert len(claim.reminders_sent) == len({r.days_before for r in claim.reminders_sent})
        sent = reminders(mailer)
        # Issue 12, item 13: never lost, since the mark puts the reminder in the outbox in the same write; twice
        # only for the one reminder a crash cut off from its record (sent, not yet out of the outbox), the window
        # of a lost SES answer that no sender can close.
        assert set(sent) == set(reminders(clean_mail)), (healthy, sent)
        assert all(times in (1, 2) for times in sent.values()), (healthy, sent)
        assert sum(sent.values()) <= sum(reminders(clean_mail).values()) + 1, (healthy, sent)
        if after_write:
            assert sent == reminders(clean_mail), healthy  # marked, then the crash: the next run sends it once
        assert_all_counters_match(state)
        dynamodb.delete_table(TableName=f"Crash{healthy}")


# ---------------------------------------------------------------- (c) reminders once each, through the handler


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> Iterator[LifecycleApi]:
    yield lifecycle_api(lambda_context)
    assert_all_counters_match(TableSnapshot(seeded))


def reminder_emails() -> list[Any]:
    return [m for m in sent_messages() if m.subject.startswith("Reminder: consent for")]


def test_each_reminder_is_sent_once_then_the_claim_expires(api: LifecycleApi, clock: FixedClock) -> None:
    claim_id = api.add_claim()
    requested_id = api.add_claim(add_customer_body(engagement_ids=[SECURITY]))
    api.requested(requested_id)
    granted_id = api.granted(
        add_customer_body(
            identifier={"type": "tpid", "value": "100200300"},
            customer_contact={"name": "Lu", "email": "lu@litware.com"},
        )
    )
    deadline = NOW + 30 * DAY

    def sweep_at(moment: datetime) -> dict[str, int]:
        clock.advance(moment - clock.now())
        return api.sweep()

    assert sweep_at(deadline - 7 * DAY - timedelta(seconds=1))["reminded"] == 0
    assert reminder_emails() == []
    report = sweep_at(deadline - 7 * DAY)
    assert (report["reminded"], report["expired"]) == (2, 0)
    first = reminder_emails()
    assert len(first) == 2
    assert {recipients(m)[0] for m in first} == {"sam@contoso-partners.com"}
    assert {m.subject for m in first} == {"Reminder: consent for Fabrikam migration is due by 27 December 2026"}
    assert api.sweep()["reminded"] == 0  # a rerun sends nothing again
    assert sweep_at(deadline - 2 * DAY)["reminded"] == 0
    assert len(reminder_emails()) == 2
    assert sweep_at(deadline - DAY)["reminded"] == 2  # the 1-day reminders
    assert api.sweep()["reminded"] == 0
    assert len(reminder_emails()) == 4
    assert api.claim(claim_id)["state"] == "pending_consent"
    report = sweep_at(deadline)
    assert (report["expired"], report["reminded"]) == (2, 0)
    assert len(reminder_emails()) == 4
    for expired_id in (claim_id, requested_id):
        claim = api.claim(expired_id)
        assert claim["state"] == "expired"
        assert [h["to"] for h in claim["history"]].count("expired") == 1
        assert claim["history"][-1]["at"] == "2026-12-27T10:00:00Z"
    assert api.sweep()["examined"] == 0
    assert api.claim(granted_id)["state"] == "consent_granted"  # consented: no reminders, no consent expiry


def test_a_reminder_whose_email_throttles_is_sent_on_the_next_run(api: LifecycleApi, clock: FixedClock) -> None:
    """SES's "Maximum sending rate exceeded" (TooManyRequestsException) defers the reminder to the next run: it is
    not a failure (the SweepFailedClaims alarm counts failures), and it is sent once (docs/scaling.md)."""
    claim_id = api.add_claim()
    clock.advance(23 * DAY)
    throttle = SesThrottle(sesv2_one_attempt(), times=1)  # the sweep's client (one attempt per send)
    report = api.sweep()
    assert (report["reminded"], report["failed"], report["deferred"]) == (0, 0, 1)
    assert len(throttle.refused) == 1
    assert reminder_emails() == []
    assert api.claim(claim_id)["state"] == "pending_consent"
    clock.advance(timedelta(minutes=5))
    report = api.sweep()
    assert (report["reminded"], report["failed"]) == (1, 0)
    assert len(reminder_emails()) == 1
    assert api.sweep()["examined"] == 0
    assert len(reminder_emails()) == 1


class ThrottledOnTheWire:
    """SES at its maximum send rate, below botocore's retries: every SendEmail request that reaches the wire from
    ``clients`` is answered 429 TooManyRequestsException, and counted (each attempt of each call)."""

    def __init__(self, *clients: Any) -> None:
        self.attempts = 0
        for client in clients:
            client.meta.events.register_first("before-send.sesv2.SendEmail", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        self.attempts += 1
        body = json.dumps({"message": "Maximum sending rate exceeded."}).encode()
        headers = {"x-amzn-ErrorType": "TooManyRequestsException", "Content-Type": "application/json"}
        return AWSResponse(request.url, 429, headers, MockRawResponse(body))  # type: ignore[arg-type]


def test_the_sweep_sees_the_first_ses_throttle_and_the_api_keeps_its_retries(
    api: LifecycleApi, clock: FixedClock
) -> None:
    """botocore's standard mode tried a throttled send four times (max_attempts 3 counts the retries) inside one call
    of the sweep, spending the account's sending rate before the paced mailer even saw the throttle; the sweep's SES
    client makes one attempt. The partner's consent send still makes four (a partner waits on it)."""
    waiting = api.add_claim()
    clock.advance(23 * DAY)  # its 7-day reminder is due
    ses = ThrottledOnTheWire(sesv2(), sesv2_one_attempt())
    report = sweep_handler()({}, FakeLambdaContext("ExpireClaimsFunction", timeout_seconds=300))
    assert (report["reminded"], report["deferred"]) == (0, 1)
    assert ses.attempts == 1
    assert api.claim(waiting)["state"] == "pending_consent"

    requested = api.add_claim(add_customer_body(engagement_ids=[SECURITY]))
    assert api.request(requested, FIRST_REQUEST).status == 503
    assert ses.attempts == 1 + 4


class LostThenThrottled(ThrottledOnTheWire):
    """The first SendEmail attempt's answer is lost on the way back (a read timeout: SES may have sent the email);
    every later attempt (botocore's retries inside the same call) is throttled."""

    def _answer(self, request: Any, **kwargs: Any) -> AWSResponse:
        if self.attempts == 0:
            self.attempts += 1
            raise ReadTimeoutError(endpoint_url=request.url)
        return super()._answer(request, **kwargs)


def test_a_consent_email_ses_may_have_taken_on_an_earlier_attempt_keeps_its_link_live(
    api: LifecycleApi, clock: FixedClock, seeded: DynamoDBClient
) -> None:
    """The API's SES client tries a send four times: the first attempt's answer was lost (SES may have sent the email
    with link L1), the next three were throttled. The mailer judged only the last attempt (throttled: nothing sent),
    so the sweep's redelivery dropped L1: a dead link in a sent email (rule 15)."""
    claim_id = api.add_claim()
    ses = LostThenThrottled(sesv2())
    assert api.request(claim_id, FIRST_REQUEST).status == 503
    assert ses.attempts == 4
    maybe_sent = stored_claims(seeded, [claim_id])[claim_id]
    assert maybe_sent.consent_token_hash is not None
    assert maybe_sent.unsent_token_hash is None  # SES may have taken it: never marked 'nothing sent'
    clock.advance(timedelta(minutes=10))
    report = sweep_handler()({}, FakeLambdaContext("ExpireClaimsFunction", timeout_seconds=300))
    assert report["failed"] == 0, report
    after = stored_claims(seeded, [claim_id])[claim_id]
    assert after.consent_token_hash != maybe_sent.consent_token_hash  # redelivered with a new link
    assert maybe_sent.consent_token_hash in after.live_token_hashes
    assert "Item" in seeded.get_item(TableName=TABLE, Key=items.token_key(maybe_sent.consent_token_hash))


def test_the_handler_stops_sending_when_the_invocation_is_nearly_out_of_time(
    api: LifecycleApi, clock: FixedClock
) -> None:
    """The handler gives the sweep the Lambda context's remaining time: an invocation with less than
    SWEEP_SEND_MARGIN_SECONDS (15 s) left sends nothing and defers the reminder, which the next run sends once."""
    claim_id = api.add_claim()
    clock.advance(23 * DAY)
    handler = sweep_handler()
    report = handler({}, FakeLambdaContext("ExpireClaimsFunction", timeout_seconds=10))
    assert (report["reminded"], report["failed"], report["deferred"]) == (0, 0, 1)
    assert reminder_emails() == []
    clock.advance(timedelta(minutes=5))
    report = handler({}, FakeLambdaContext("ExpireClaimsFunction", timeout_seconds=300))
    assert (report["reminded"], report["failed"], report["deferred"]) == (1, 0, 0)
    assert len(reminder_emails()) == 1
    assert api.claim(claim_id)["state"] == "pending_consent"


# ---------------------------------------------------------------- the harness: lean moto transactions


def test_a_cancelled_transaction_still_changes_nothing(dynamodb: DynamoDBClient) -> None:
    """moto's rollback with the lean backup: the earlier writes of a cancelled transaction are undone."""
    counter = {**items.counter_key(MIGRATE, "tpid:1"), **items.serialize({"active_count": 1, "version": 1})}
    taken = {**items.claim_key("c-taken"), **items.serialize({"type": "test", "claim_id": "c-taken"})}
    for item in (counter, taken):
        dynamodb.put_item(TableName=TABLE, Item=item)
    before = TableSnapshot(dynamodb).items
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": items.counter_key(MIGRATE, "tpid:1"),
                        "UpdateExpression": "ADD active_count :one, version :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Put": {"TableName": TABLE, "Item": {**items.claim_key("c-new"), "type": {"S": "test"}}}},
                {"Put": {"TableName": TABLE, "Item": taken, "ConditionExpression": "attribute_not_exists(PK)"}},
            ]
        )
    after = TableSnapshot(dynamodb).items
    assert after == before
    assert after[(items.limit_pk(MIGRATE, "tpid:1"), "COUNT")]["active_count"] == 1
