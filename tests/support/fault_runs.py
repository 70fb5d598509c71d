"""Running one operation under every fault ``tests.support.faults`` can inject, and judging each run.

An operation is a ``Scenario``: how to reach its initial state through the real flows (``prepare``), the one
request or sweep run it stands for (``act``), and how a client retries it (``retry``). ``exercise``

1. saves the initial state (the moto tables and SES outbox, the clock) and runs ``act`` cleanly, recording
   its AWS calls and the table after each write (every state a clean run passes through), then settles
   (the client's retry, then a sweep ten minutes later) to get the clean end state;
2. for every recorded call and every fault kind that applies to it, restores the initial state, runs ``act``
   with that fault, judges the state left behind (``_after_fault``), settles with no fault, and judges the end
   state against the clean one (``_after_settling``).

States are compared normalised: random ids (UUIDs), token hashes, SES message ids, request ids, write counters
(``version``) and retry counters (``attempts``) are blanked, and work the settling sweep did ten minutes late
carries the act's timestamp. Problems are collected, not raised, so one test reports every failing fault.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from moto.backends import get_backend
from moto.dynamodb.models.dynamo_type import DynamoType

from mci.adapters import dynamodb_items as items
from mci.adapters.dynamodb_claims import claim_from_item
from mci.adapters.memory import MemoryMetrics
from mci.domain.claims import Claim, ClaimState, EmailStatus
from mci.domain.clock import FixedClock, isoformat
from mci.domain.consent_token import token_hash
from mci.domain.errors import DependencyUnavailable
from tests.support.api import Answer
from tests.support.consent import ACCOUNT, LINK, REGION
from tests.support.faults import Call, Fault, FaultInjector, Kind, SentEmail
from tests.support.store_snapshots import TableSnapshot, assert_all_counters_match

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from tests.support.lifecycle_api import LifecycleApi

REFERENCE_PREFIXES = ("REF#", "LOC#", "CUST#", "DOMAIN#")
SETTLE_AFTER = timedelta(minutes=10)  # past the outbox's first backoffs (2 min notices, 5 min consent emails)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SHA256 = re.compile(r"[0-9a-f]{64}")
VOLATILE = frozenset({"version", "attempts", "message_id", "request_id", "due_shard"})
# Moved by a failed send (its backoff; the link SES certainly took nothing for, which a redelivery may drop):
# compared only at the end.
RETRY_BOOKKEEPING = frozenset({"due_at", "unsent_token_hash"})
LOOSE = VOLATILE | RETRY_BOOKKEEPING
RETRYABLE = frozenset({429, 503})
CONSENT_EMAILS_OUT = frozenset({"ConsentEmailsSent", "ConsentEmailsResent", "ConsentEmailsRedelivered"})
DECISION_KINDS = {ClaimState.CONSENT_GRANTED: "consent_accepted", ClaimState.CONSENT_DECLINED: "consent_declined"}


# ---------------------------------------------------------------- the moto backend, saved and restored


@dataclass(frozen=True)
class Saved:
    tables: dict[str, Any]
    emails: list[Any]
    now: datetime


class Store:
    """The moto backend the handlers write to, read and reset directly (no API round trips)."""

    def __init__(self, clock: FixedClock) -> None:
        self.dynamodb = get_backend("dynamodb")[ACCOUNT][REGION]
        self.ses = get_backend("ses")[ACCOUNT][REGION]
        self.clock = clock
        for table in (self.claims_table, self.idempotency_table):
            table.stream_shard = None  # nobody reads the streams here; moto would copy them on every transaction

    # A cancelled transaction puts moto's backup of the table in its place: look tables up every time.
    @property
    def claims_table(self) -> Any:
        return self.dynamodb.tables["ClaimsTable"]

    @property
    def idempotency_table(self) -> Any:
        return self.dynamodb.tables["IdempotencyTable"]

    def save(self) -> Saved:
        return Saved(
            tables={t.name: copy.deepcopy(t.items) for t in (self.claims_table, self.idempotency_table)},
            emails=list(self.ses.sent_messages),
            now=self.clock.now(),
        )

    def restore(self, saved: Saved) -> None:
        for table in (self.claims_table, self.idempotency_table):
            table.items = copy.deepcopy(saved.tables[table.name])
        self.ses.sent_messages[:] = saved.emails
        self.clock.advance(saved.now - self.clock.now())

    def raw_items(self) -> Iterator[dict[str, Any]]:
        for key, ranged in self.claims_table.items.items():
            if not str(key.value).startswith(REFERENCE_PREFIXES):
                for item in ranged.values():
                    yield item.to_json()["Attributes"]

    def view(self) -> TableSnapshot:
        """Counters, guards and claims as ``assert_all_counters_match`` reads them, without a Scan's round trip."""
        view = TableSnapshot.__new__(TableSnapshot)
        view.counters, view.guards, view.claims, view.items = {}, {}, [], {}
        for raw in self.raw_items():
            view._add(raw)
        return view

    def anything_due(self, now: datetime) -> bool:
        due = isoformat(now)
        return any("due_at" in raw and raw["due_at"]["S"] <= due for raw in self.raw_items())

    def claims(self) -> dict[str, Claim]:
        found = (claim_from_item(raw) for raw in self.raw_items() if raw.get("type") == {"S": "claim"})
        return {c.claim_id: c for c in found}

    def normal(
        self, aliases: dict[str, str] | None = None, drop: frozenset[str] = VOLATILE, *, kept_apart: bool = False
    ) -> tuple[str, ...]:
        """The claims table without reference data, normalised, as a sorted tuple of JSON texts. ``kept_apart``:
        without the links a redelivery kept live beside the current one (their token items and the claims' lists):
        an email SES may have taken (its answer lost, or a 5xx) keeps its link when the retry sends a new one."""
        raw_items = list(self.raw_items())
        if kept_apart:
            kept = {f"TOKEN#{h}" for claim in self.claims().values() for h in claim.kept_token_hashes}
            raw_items = [raw for raw in raw_items if raw["PK"]["S"] not in kept]
            drop = drop | {"kept_token_hashes"}
        return tuple(
            sorted(json.dumps(normal(items.deserialize(raw), aliases, drop), sort_keys=True) for raw in raw_items)
        )

    def dead_kept_links(self) -> list[str]:
        """Claims awaiting consent that keep a link whose token item is gone (it would open nothing)."""
        tokens = {raw["PK"]["S"] for raw in self.raw_items() if raw["PK"]["S"].startswith("TOKEN#")}
        return [
            claim.claim_id
            for claim in self.claims().values()
            if claim.state is ClaimState.CONSENT_REQUESTED
            and claim.consent_token_hash
            and any(f"TOKEN#{h}" not in tokens for h in claim.kept_token_hashes)
        ]

    def expire_in_progress(self) -> int:
        """Idempotency records left in progress: as when the Lambda that wrote them has timed out."""
        expired = 0
        for item in self.idempotency_table.items.values():  # a hash key only: one item per key
            if item.attrs.get("status") == DynamoType({"S": "INPROGRESS"}):
                item.attrs["in_progress_expiration"] = DynamoType({"N": "0"})
                expired += 1
        return expired


def timestamp_aliases(late: datetime, on_time: datetime) -> dict[str, str]:
    """Both text forms of ``late`` mapped to those of ``on_time``."""
    forms: list[Callable[[datetime], str]] = [isoformat, lambda at: at.strftime("%Y-%m-%dT%H:%M:%SZ")]
    return {form(late): form(on_time) for form in forms}


def normal(value: Any, aliases: dict[str, str] | None = None, drop: frozenset[str] = VOLATILE) -> Any:
    if isinstance(value, dict):
        return {_text(k, aliases): normal(v, aliases, drop) for k, v in value.items() if k not in drop}
    if isinstance(value, list | tuple | set):
        return [normal(v, aliases, drop) for v in value]
    if isinstance(value, str):
        return _text(value, aliases)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _text(text: str, aliases: dict[str, str] | None) -> str:
    text = SHA256.sub("<sha>", UUID.sub("<id>", text))
    return (aliases or {}).get(text, text)


def per_key(raw_items: Iterator[dict[str, Any]], drop: frozenset[str]) -> dict[str, list[str]]:
    """Each item's normalised value under its own key (ids kept: the sweep's claims exist before it runs); the
    consent links, whose keys are new random hashes, all under one key."""
    grouped: dict[str, list[str]] = {}
    for raw in raw_items:
        pk = raw["PK"]["S"]
        key = "TOKEN#" if pk.startswith("TOKEN#") else f"{pk}|{raw['SK']['S']}"
        grouped.setdefault(key, []).append(json.dumps(normal(items.deserialize(raw), None, drop), sort_keys=True))
    return {key: sorted(values) for key, values in grouped.items()}


# ---------------------------------------------------------------- scenarios and outcomes


@dataclass
class Outcome:
    """What the client (or the scheduler) got."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    error: BaseException | None = None

    @classmethod
    def of(cls, answer: Answer) -> Outcome:
        return cls(status=answer.status, headers=answer.headers, body=answer.body)

    @property
    def succeeded(self) -> bool:
        return self.error is None and (self.status is None or 200 <= self.status < 300)

    @property
    def in_progress(self) -> bool:
        return self.status == 409 and isinstance(self.body, dict) and self.body.get("code") == "idempotency_in_progress"

    def __str__(self) -> str:
        if self.error is not None:
            return f"raised {self.error!r}"
        body = self.body if isinstance(self.body, dict) else str(self.body)[:80]
        return f"{self.status} {body if self.status != 200 and self.status != 201 else ''}".strip()


@dataclass
class World:
    api: LifecycleApi
    injector: FaultInjector
    store: Store
    clock: FixedClock
    client: DynamoDBClient
    context: Any
    metrics: MemoryMetrics = field(default_factory=MemoryMetrics)

    def counted_since(self, mark: int) -> Counter[tuple[str, tuple[tuple[str, str], ...]]]:
        """The business metrics counted since ``mark`` (a length of ``metrics.counts``), the consent emails
        that reached SES as one metric: a send whose record failed is the sweep's redelivery, still one email."""
        found: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        for count in self.metrics.counts[mark:]:
            name = "ConsentEmailsOut" if count.name in CONSENT_EMAILS_OUT else count.name
            found[(name, count.dimensions)] += count.value
        return found

    def sweep(self) -> Outcome:
        """One run of the scheduled sweep's handler; a DependencyUnavailable fails the invocation (retried)."""
        module = importlib.import_module("functions.expire_claims.app")
        try:
            return Outcome(body=module.lambda_handler({}, self.context))
        except DependencyUnavailable as error:
            return Outcome(error=error)


class Scenario(Protocol):
    name: str
    atomic: bool  # one request: the table is always one of the states a clean run passes through

    def prepare(self, world: World) -> None: ...

    def act(self, world: World) -> Outcome: ...

    def retry(self, world: World, first: Outcome) -> Outcome | None:
        """The client's retry after ``first`` (None when a client would not retry)."""
        ...


def retry_until_answered(world: World, send: Callable[[], Outcome]) -> Outcome:
    """Retry as a client honouring Retry-After would; an in-progress record outlives its Lambda only so long."""
    answer = send()
    for _ in range(2):
        if not answer.in_progress:
            break
        world.store.expire_in_progress()
        answer = send()
    return answer


# ---------------------------------------------------------------- the run


@dataclass
class Clean:
    calls: list[Call]
    states: list[tuple[str, ...]]
    keyed: list[dict[str, list[str]]]
    first: Outcome
    answer: Outcome
    final: tuple[str, ...]
    emails: Counter[tuple[str, str]]
    metrics: Counter[tuple[str, tuple[tuple[str, str], ...]]]


@dataclass
class Tally:
    """What a scenario's faults did (the summary line)."""

    calls: int = 0
    faults: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    writers: Counter[str] = field(default_factory=Counter)  # what each conflict's concurrent writer did
    problems: list[str] = field(default_factory=list)


def exercise(world: World, scenario: Scenario, only: Callable[[Call, Kind], bool] | None = None) -> Tally:
    scenario.prepare(world)
    initial = world.store.save()
    setup_tokens = {t for m in initial.emails for t in LINK.findall(str(m.body))}
    clean = _clean_run(world, scenario, initial)
    return _each_fault(
        world,
        scenario,
        clean.calls,
        lambda call: call.kinds,
        initial,
        only,
        lambda fault, tally: _faulty_run(world, scenario, clean, fault, initial, setup_tokens, tally),
    )


def _each_fault(
    world: World,
    scenario: Scenario,
    calls: list[Call],
    kinds_of: Callable[[Call], tuple[Kind, ...]],
    initial: Saved,
    only: Callable[[Call, Kind], bool] | None,
    run: Callable[[Fault, Tally], list[str]],
) -> Tally:
    """``run`` once per call and kind, each from the initial state; the problems it finds, tallied."""
    tally = Tally(calls=len(calls))
    for call in calls:
        for kind in kinds_of(call):
            if only is not None and not only(call, kind):
                continue
            world.store.restore(initial)
            fault = Fault(call.index, kind)
            tally.faults += 1
            tally.kinds[kind.value] += 1
            found = run(fault, tally)
            tally.problems += [f"{scenario.name}: {kind.value} on {call.label}: {p}" for p in found]
    world.store.restore(initial)
    return tally


def _clean_run(world: World, scenario: Scenario, initial: Saved) -> Clean:
    mark = len(world.metrics.counts)
    states = [world.store.normal(drop=LOOSE)]
    keyed = [per_key(world.store.raw_items(), LOOSE)]

    def record(_call: Call) -> None:
        states.append(world.store.normal(drop=LOOSE))
        keyed.append(per_key(world.store.raw_items(), LOOSE))

    world.injector.after_write = record
    try:
        with world.injector.recording() as recorder:
            first = scenario.act(world)
        calls = list(recorder.calls)
        emails = list(recorder.emails)
    finally:
        world.injector.after_write = None
    assert first.succeeded, f"{scenario.name}: the clean run failed: {first}"
    answer, settled = _settle(world, scenario, first)
    assert answer.succeeded, f"{scenario.name}: the clean retry failed: {answer}"
    aliases = timestamp_aliases(initial.now + SETTLE_AFTER, initial.now)
    return Clean(
        calls=calls,
        states=states,
        keyed=keyed,
        first=first,
        answer=answer,
        final=world.store.normal(aliases, kept_apart=True),
        emails=Counter((e.kind, e.to) for e in [*emails, *settled]),
        metrics=world.counted_since(mark),
    )


def _settle(world: World, scenario: Scenario, first: Outcome) -> tuple[Outcome, list[SentEmail]]:
    """The client's retry, then a sweep once the outbox's backoff has passed; no fault."""
    with world.injector.recording() as recorder:
        retried = scenario.retry(world, first)
        world.clock.advance(SETTLE_AFTER)
        # The sweep reads only claims whose due_at has come (DueIndex): when there are none it does nothing.
        swept = world.sweep() if world.store.anything_due(world.clock.now()) else Outcome(body={})
        assert swept.error is None, f"the settling sweep failed: {swept}"
        emails = list(recorder.emails)
    if retried is None:  # no client retry: the answer stands, or the settling sweep was the scheduler's retry
        retried = first if first.succeeded else swept
    return retried, emails


def _faulty_run(
    world: World,
    scenario: Scenario,
    clean: Clean,
    fault: Fault,
    initial: Saved,
    setup_tokens: set[str],
    tally: Tally,
) -> list[str]:
    before = world.store.claims()
    mark = len(world.metrics.counts)
    with world.injector.recording(fault) as recorder:
        try:
            first = scenario.act(world)
        except Exception as error:  # a raw error out of a handler is a finding, not a crash of the suite
            return [f"the handler raised {error!r}"]
        calls = list(recorder.calls)
        emails = list(recorder.emails)
        lost = list(recorder.lost_emails)
        unknown = list(recorder.unknown_emails)
    injected = [i for i in world.injector.injected if i[0] == fault]
    if not injected:
        return [f"never injected: the run made {len(calls)} calls, not {len(clean.calls)}"]
    expected = clean.calls[fault.index]
    if (calls[fault.index].service, calls[fault.index].operation) != (expected.service, expected.operation):
        return [f"call #{fault.index} is {calls[fault.index].label}, the clean run's was {expected.label}"]
    tally.outcomes[_verdict(first)] += 1
    if fault.kind is Kind.CONFLICT:
        tally.writers[injected[-1][2]] += 1
    found = _check_answer(scenario, clean, first)
    found += _after_fault(world, scenario, clean, before, emails, setup_tokens, lost)
    try:
        answer, settled = _settle(world, scenario, first)
    except Exception as error:  # the retry or the settling sweep blew up: a finding
        return [*found, f"settling failed: {error!r}"]
    found += _after_settling(world, clean, initial, answer, [*emails, *settled], lost)
    found += _kept_links(world.store.claims(), before, fault, setup_tokens, [*emails, *settled, *unknown])
    counted = world.counted_since(mark)
    if counted != clean.metrics:  # business metrics count committed changes once, whatever failed or was retried
        found.append(f"metrics {dict(counted)}, a clean run counts {dict(clean.metrics)}")
    return found


def _verdict(first: Outcome) -> str:
    if first.error is not None:
        return "raised (the scheduler retries)"
    if first.succeeded:
        return "absorbed (answered as a clean run)"
    if first.in_progress:
        return "409 in progress with Retry-After"
    return f"{first.status} with Retry-After"


def _check_answer(scenario: Scenario, clean: Clean, first: Outcome) -> list[str]:
    """The client got a clean run's answer, or a retryable one: 429/503 with Retry-After (or in-progress 409)."""
    if first.error is not None:
        return [] if isinstance(first.error, DependencyUnavailable) else [f"the sweep raised {first.error!r}"]
    if first.status is None:
        return []  # a sweep that reported (failed or skipped claims are picked up by the next run)
    if first.succeeded:
        if (first.status, normal(first.body)) != (clean.first.status, normal(clean.first.body)):
            return [f"answered {first.status}, not the clean run's answer: {first.body}"]
        return []
    if first.status not in RETRYABLE and not first.in_progress:
        return [f"answered {first}, not a retryable 429 or 503"]
    found = []
    retry_after = first.headers.get("retry-after", "")
    if not retry_after.isdigit() or int(retry_after) < 1:
        found.append(f"{first.status} without a Retry-After of at least a second ({retry_after!r})")
    content_type = first.headers.get("content-type", "")
    if content_type.startswith("application/problem+json"):
        if not isinstance(first.body, dict) or first.body.get("status") != first.status:
            found.append(f"a problem whose body does not match its status: {first.body}")
    elif not content_type.startswith("text/html"):  # the consent page answers its customer in HTML
        found.append(f"a {first.status} that is not a problem: {content_type}")
    elif "link is not valid" in str(first.body):
        found.append(f"a {first.status} page telling the customer the link is not valid: nobody would try again")
    return found


def _after_fault(
    world: World,
    scenario: Scenario,
    clean: Clean,
    before: dict[str, Claim],
    emails: list[SentEmail],
    setup_tokens: set[str],
    lost: list[SentEmail],
) -> list[str]:
    found: list[str] = []
    if scenario.atomic:
        if world.store.normal(drop=LOOSE) not in clean.states:
            found.append("partial write: the table is in no state a clean run passes through")
    else:
        state = per_key(world.store.raw_items(), LOOSE)
        for key in set(state) | {k for s in clean.keyed for k in s}:
            if not any(s.get(key) == state.get(key) for s in clean.keyed):
                found.append(f"partial write: {key} is {state.get(key)}, never so in a clean run")
    try:
        assert_all_counters_match(world.store.view())
    except AssertionError as error:
        found.append(f"counters: {error}")
    found += _emails_match_states(world.store.claims(), before, emails, setup_tokens, lost)
    return found


def _emails_match_states(
    claims: dict[str, Claim],
    before: dict[str, Claim],
    emails: list[SentEmail],
    setup_tokens: set[str],
    lost: list[SentEmail],
) -> list[str]:
    """No email without its state change; no state change whose email is neither sent nor in the outbox."""
    found = []
    for email in emails:
        claim = claims.get(email.claim_id)
        if claim is None:
            found.append(f"a {email.kind} email for a claim that does not exist")
        elif email.kind == "consent_request":
            if claim.state is not ClaimState.CONSENT_REQUESTED or claim.consent_token_hash != token_hash(
                email.token or ""
            ):
                found.append(f"a consent email whose link is dead (claim {claim.state.value})")
        elif email.kind in DECISION_KINDS.values():
            if DECISION_KINDS.get(claim.state) != email.kind:
                found.append(f"a {email.kind} email, the claim is {claim.state.value}")
            elif any(n.kind == email.kind for n in claim.pending_notices) and email not in lost:
                found.append(f"a {email.kind} email sent and still in the outbox: it will go twice")
        elif email.kind == "consent_reminder":
            earlier = before.get(claim.claim_id)
            recorded = earlier is not None and len(claim.reminders_sent) > len(earlier.reminders_sent)
            if not recorded and email not in lost:
                found.append("a reminder sent but not recorded: it will go twice")
    mailed = {token_hash(t) for t in setup_tokens | {e.token for e in emails if e.token}}
    for claim in claims.values():
        earlier = before.get(claim.claim_id)
        delivery = claim.consent_email
        if claim.state is ClaimState.CONSENT_REQUESTED and delivery is not None:
            if delivery.status is EmailStatus.SENT and claim.consent_token_hash not in mailed:
                found.append("the claim says its consent email was sent; no email carries its link")
            if delivery.status is EmailStatus.PENDING and claim.due_at is None:
                found.append("a pending consent email nobody will retry (no due_at)")
        if claim.pending_notices and claim.due_at is None:
            found.append("a pending notice nobody will retry (no due_at)")
        if earlier is not None and earlier.state is ClaimState.CONSENT_REQUESTED and claim.state in DECISION_KINDS:
            kind = DECISION_KINDS[claim.state]
            sent = any(e.kind == kind and e.claim_id == claim.claim_id for e in emails)
            if not sent and not _kept_or_refused(claim, earlier, kind):
                found.append(f"decided, but the {kind} email is neither sent nor in the outbox nor recorded as refused")
        reminded = earlier is not None and len(claim.reminders_sent) > len(earlier.reminders_sent)
        reminder = any(e.kind == "consent_reminder" and e.claim_id == claim.claim_id for e in emails)
        if reminded and not reminder and not _kept_or_refused(claim, earlier, "consent_reminder"):
            found.append(
                "a reminder recorded as sent that was never sent, nor is in the outbox, nor recorded as refused"
            )
    return found


def _kept_or_refused(claim: Claim, earlier: Claim | None, kind: str) -> bool:
    """The email is in the claim's outbox (the sweep sends it), or recorded on the claim as refused (rule 29)."""
    refused = claim.email_failures[len(earlier.email_failures) if earlier else 0 :]
    return any(n.kind == kind for n in claim.pending_notices) or any(f.kind == kind for f in refused)


def _after_settling(
    world: World,
    clean: Clean,
    initial: Saved,
    answer: Outcome,
    emails: list[SentEmail],
    lost: list[SentEmail],
) -> list[str]:
    found: list[str] = []
    if not answer.succeeded:
        found.append(f"the retry without a fault answered {answer}")
    elif answer.status is not None and normal(answer.body) != normal(clean.answer.body):
        found.append(f"the retry answered {answer.status} {answer.body}, not the clean run's answer")
    aliases = timestamp_aliases(initial.now + SETTLE_AFTER, initial.now)
    final = world.store.normal(aliases, kept_apart=True)  # kept links: judged below (live), and by the emails
    if world.store.dead_kept_links():
        found.append(f"claims keeping a link that opens nothing: {world.store.dead_kept_links()}")
    if final != clean.final:
        extra = sorted(set(final) - set(clean.final))[:2]
        missing = sorted(set(clean.final) - set(final))[:2]
        found.append(f"the end state differs from a clean run's: has {extra}, lacks {missing}")
    try:
        assert_all_counters_match(world.store.view())
    except AssertionError as error:
        found.append(f"counters after the retry: {error}")
    sent = Counter((e.kind, e.to) for e in emails)
    expected = clean.emails + Counter((e.kind, e.to) for e in lost)  # SES took it; nobody can know
    if sent != expected:
        found.append(
            f"emails {dict(sent)}, a clean run sends {dict(clean.emails)}" + (" plus the lost one" if lost else "")
        )
    claims = world.store.claims()
    for claim in claims.values():
        links = [e.token for e in emails if e.kind == "consent_request" and e.claim_id == claim.claim_id]
        if (
            claim.state is ClaimState.CONSENT_REQUESTED
            and links
            and claim.consent_token_hash != token_hash(links[-1] or "")
        ):
            found.append("the last consent email's link is not the live one")
    return found


# An email certainly not taken by SES: its link must never be kept live by a redelivery (rule 15, SPEC §3).
NOTHING_SENT = frozenset({Kind.THROTTLING, Kind.TIMEOUT})


def _kept_links(
    claims: dict[str, Claim], before: dict[str, Claim], fault: Fault, setup_tokens: set[str], mailed: list[SentEmail]
) -> list[str]:
    """A redelivery keeps live only the links of emails SES took, or whose answer it may have lost (a lost answer,
    a 5xx): ``mailed``. After a throttle or a connection never made, no claim keeps a link it did not keep before."""
    may_hold = {token_hash(t) for t in setup_tokens | {e.token for e in mailed if e.token}}
    found = []
    for claim in claims.values():
        earlier = before.get(claim.claim_id)
        new = set(claim.kept_token_hashes) - set(earlier.kept_token_hashes if earlier else ())
        if new - may_hold:
            found.append(f"a kept link no email SES may have taken carries (claim {claim.claim_id})")
        if new and fault.kind in NOTHING_SENT:
            found.append(f"a link kept after a {fault.kind.value}, which sends nothing (claim {claim.claim_id})")
    return found


# ---------------------------------------------------------------- permanent failures (issue 17, item 2)


def claims_view(store: Store) -> dict[str, str]:
    """Each claim, normalised (ids, hashes and retry bookkeeping blanked), by claim id."""
    return {
        claim_id: json.dumps(normal(claim.model_dump(mode="json"), None, LOOSE), sort_keys=True)
        for claim_id, claim in store.claims().items()
    }


def exercise_permanent(world: World, scenario: Scenario, only: Callable[[Call, Kind], bool] | None = None) -> Tally:
    """``scenario`` with each call failed in turn for good (``Call.permanent_kinds``), judged by ``_permanent_run``."""
    scenario.prepare(world)
    initial = world.store.save()
    setup_tokens = {t for m in initial.emails for t in LINK.findall(str(m.body))}
    first = scenario.act(world)
    assert first.succeeded, f"{scenario.name}: the clean run failed: {first}"
    after_clean = claims_view(world.store)  # each claim as the act leaves it, before any retry or sweep
    world.store.restore(initial)
    clean = _clean_run(world, scenario, initial)
    return _each_fault(
        world,
        scenario,
        clean.calls,
        lambda call: call.permanent_kinds,
        initial,
        only,
        lambda fault, tally: _permanent_run(world, scenario, clean, after_clean, fault, setup_tokens, tally),
    )


ACTIONABLE = frozenset({"email_rejected"})  # the 4xx a refusal for good may answer: the client fixes the address


def _permanent_run(
    world: World,
    scenario: Scenario,
    clean: Clean,
    after_clean: dict[str, str],
    fault: Fault,
    setup_tokens: set[str],
    tally: Tally,
) -> list[str]:
    """A failure no retry cures: the client gets a 4xx it can act on (naming the field) or a 503 for operators,
    never a 500; a background job reports and goes on with its other items; nothing is half done; the outbox
    never holds an item nobody will retry; a retry without the fault answers, and the next sweep runs clean."""
    before = world.store.claims()
    untouched = world.store.normal(drop=LOOSE)
    with world.injector.recording(fault) as recorder:
        try:
            first = scenario.act(world)
        except Exception as error:  # a raw error out of a handler is a finding, not a crash of the suite
            return [f"the handler raised {error!r}"]
        emails = list(recorder.emails)
    if not any(i[0] == fault for i in world.injector.injected):
        return [f"never injected: the run made {len(recorder.calls)} calls"]
    tally.outcomes[_permanent_verdict(first)] += 1
    found: list[str] = []
    if first.error is not None:
        # Only a run that could not even read its work may fail as a whole (the Errors alarm calls an operator).
        if not isinstance(first.error, DependencyUnavailable) or world.store.normal(drop=LOOSE) != untouched:
            found.append(f"the background job raised {first.error!r} after doing part of its work")
    elif first.status is not None and not first.succeeded:
        found += _check_refusal(first)
    if first.status is None and first.error is None:  # the sweep: one claim at most is held back by the fault
        now = claims_view(world.store)
        held = sorted(c for c in after_clean if now.get(c) != after_clean[c])
        if len(held) > 1:
            found.append(f"the sweep stopped: {len(held)} claims not processed as in a clean run ({held})")
    elif scenario.atomic and first.status in RETRYABLE and world.store.normal(drop=LOOSE) not in clean.states:
        found.append("partial write: the table is in no state a clean run passes through")
    try:
        assert_all_counters_match(world.store.view())
    except AssertionError as error:
        found.append(f"counters: {error}")
    found += _emails_match_states(world.store.claims(), before, emails, setup_tokens, [])
    for claim in world.store.claims().values():
        email = claim.consent_email
        if email is not None and email.status is EmailStatus.PENDING and first.status not in RETRYABLE | {None}:
            found.append(f"answered {first.status} and left the consent email pending, for the sweep to retry")
    try:
        answer, _ = _settle(world, scenario, first)
    except Exception as error:  # the retry or the settling sweep blew up: a finding
        return [*found, f"settling failed: {error!r}"]
    if answer.error is not None or (answer.status is not None and answer.status >= 500):
        found.append(f"the retry without a fault answered {answer}")
    try:
        assert_all_counters_match(world.store.view())
    except AssertionError as error:
        found.append(f"counters after the retry: {error}")
    return found


def _permanent_verdict(first: Outcome) -> str:
    if first.error is not None:
        return "raised"
    if first.status is None:
        return "reported (the sweep went on)"
    if first.succeeded:
        return "absorbed (the answer stands, the failure recorded)"
    code = first.body.get("code") if isinstance(first.body, dict) else "page"
    return f"{first.status} {code}"


def _check_refusal(first: Outcome) -> list[str]:
    """A 503 with Retry-After (operators must fix it), or a 4xx problem naming the field the client can fix."""
    if first.status in RETRYABLE:
        retry_after = first.headers.get("retry-after", "")
        return [] if retry_after.isdigit() and int(retry_after) >= 1 else [f"{first.status} without Retry-After"]
    body = first.body if isinstance(first.body, dict) else {}
    if first.status is None or not 400 <= first.status < 500 or body.get("code") not in ACTIONABLE:
        return [f"answered {first}, neither a 503 nor a 4xx the client can act on"]
    if not first.headers.get("content-type", "").startswith("application/problem+json"):
        return [f"a {first.status} that is not a problem"]
    if not any(e.get("field") for e in body.get("errors", [])):
        return [f"a {first.status} naming no field: {body}"]
    return []
