"""Issue 6, item 4: every AWS call of every write path, failed in turn, on the real handlers on moto.

For add customer, claim customer, consent send, the consent callback, submission, review and the sweep, a
clean run records the AWS calls the operation makes (``tests/support/faults.py``); then, from the same
initial state, each call is failed in turn with each fault that applies to it: throttling, a timeout, an
internal error, a genuine conditional failure made by a concurrent writer (conditional writes) and a lost
response, the call applied and its answer lost (writes). After each fault (``tests/support/fault_runs.py``):

- the client got either the clean run's answer (the service absorbed the fault) or a retryable 429 or 503
  with ``Retry-After`` (a problem, or the consent page's HTML); the sweep either reported or raised, so the
  scheduler runs it again;
- no partial write: the table is one a clean run passes through (claim by claim for the sweep, which
  commits one claim at a time), and every counter equals its active claims;
- no email without its state change (a consent email's link is live, a notice's decision is stored, a
  reminder is recorded) and no state change whose email is neither sent nor in the outbox;

then the client retries (same Idempotency-Key) and a sweep runs ten minutes later, with no fault, and the
end state, the answer and the emails are a clean run's: one claim, one email. The one exception is a lost
SES answer: SES took the email and nobody can know, so the retry sends it again (at least once, never
lost); the newest consent link is the claim's, and the earlier one stays live beside it (kept, as after a
5xx from SES: docs/data-model.md, "Links kept live across a redelivery"), so no customer holds a dead link.

The calls are enumerated from the clean run, never counted by hand, so the suite follows the code when a
round trip is added or removed. ``FAULTS_ONLY=<kind>`` runs one kind (debugging).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from local.moto_patches import lean_moto
from mci import wiring
from mci.adapters.aws import dependency, outcome_unknown, sesv2
from mci.adapters.memory import MemoryMetrics
from mci.domain.clock import FixedClock, SystemClock
from mci.domain.consent_token import token_hash
from mci.domain.errors import DependencyUnavailable
from mci.settings import get_settings
from tests.support.api import Caller
from tests.support.consent import FIRST_REQUEST, SesThrottle, northwind_body
from tests.support.fault_runs import (
    Outcome,
    Scenario,
    Store,
    Tally,
    World,
    exercise,
    exercise_permanent,
    retry_until_answered,
)
from tests.support.faults import Call, Fault, FaultInjector, Kind, Outage
from tests.support.lifecycle_api import OPERATIONS_PARTNER, OPERATIONS_ROLES, lifecycle_api
from tests.support.reference import (
    ADATUM,
    ADATUM_LISBON,
    CONTOSO_MADRID,
    FABRIKAM_TENANT,
    MIGRATE,
    NORTHWIND,
    NOW,
    SECURITY,
    add_customer_body,
    demo_data,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY = "fault-injection-1"
DAY = timedelta(days=1)


def keyed() -> dict[str, str]:
    return {"idempotency-key": KEY}


# ---------------------------------------------------------------- the operations


class AddCustomer:
    """Contoso adds Fabrikam to two engagements; Northwind already holds Fabrikam in one (its counter exists)."""

    name = "add customer"
    atomic = True
    body = add_customer_body(engagement_ids=[MIGRATE, SECURITY])

    def prepare(self, world: World) -> None:
        world.api.add_claim(northwind_body(), caller=Caller(NORTHWIND, ["incentives_user"], world.context))

    def act(self, world: World) -> Outcome:
        return Outcome.of(world.api.partner.post("/customers", self.body, headers=keyed()))

    def retry(self, world: World, first: Outcome) -> Outcome | None:
        return retry_until_answered(world, lambda: self.act(world))


class ClaimCustomer:
    """Contoso claims Fabrikam, known since it consented on a Migrate claim, for the Security workshop."""

    name = "claim customer"
    atomic = True
    customer_id = f"tenant_id:{FABRIKAM_TENANT}"
    body = {"friendly_name": "Fabrikam security", "location_id": CONTOSO_MADRID, "engagement_ids": [SECURITY]}

    def prepare(self, world: World) -> None:
        world.api.granted()

    def act(self, world: World) -> Outcome:
        return Outcome.of(world.api.claim_customer(self.customer_id, self.body, key=KEY))

    def retry(self, world: World, first: Outcome) -> Outcome | None:
        return retry_until_answered(world, lambda: self.act(world))


class ConsentSend:
    """The first consent request of a Migrate claim: a referral, a link, the email, then the email's record."""

    name = "consent send"
    atomic = True
    claim_id = ""

    def prepare(self, world: World) -> None:
        self.claim_id = world.api.add_claim()

    def act(self, world: World) -> Outcome:
        return Outcome.of(world.api.request(self.claim_id, FIRST_REQUEST, key=KEY))

    def retry(self, world: World, first: Outcome) -> Outcome | None:
        return retry_until_answered(world, lambda: self.act(world))


class ConsentCallback:
    """The customer accepts: the claim, the known customer and the co-sell referral, then the partner's notice."""

    name = "consent callback"
    atomic = True
    token = ""

    def prepare(self, world: World) -> None:
        self.token = world.api.requested_by(world.api.add_claim())

    def act(self, world: World) -> Outcome:
        return Outcome.of(world.api.decide(self.token, "accept"))

    def retry(self, world: World, first: Outcome) -> Outcome | None:
        """The customer presses the button again only if the page said to try again."""
        return None if first.succeeded else self.act(world)


class Submission:
    name = "submission"
    atomic = True
    claim_id = ""

    def prepare(self, world: World) -> None:
        self.claim_id = world.api.granted()

    def act(self, world: World) -> Outcome:
        return Outcome.of(world.api.submit(self.claim_id, {"notes": "work delivered"}, key=KEY))

    def retry(self, world: World, first: Outcome) -> Outcome | None:
        return retry_until_answered(world, lambda: self.act(world))


class Review:
    """Operations complete a submitted claim: the counter, the guard and the referral close with it."""

    name = "review"
    atomic = True
    claim_id = ""

    def prepare(self, world: World) -> None:
        self.claim_id = world.api.submitted()

    def act(self, world: World) -> Outcome:
        return Outcome.of(
            world.api.ops.post(
                f"/ops/claims/{self.claim_id}/review",
                {"decision": "complete", "reason": "checked by operations"},
                headers=keyed(),
            )
        )

    def retry(self, world: World, first: Outcome) -> Outcome | None:
        return retry_until_answered(world, lambda: self.act(world))


class Sweep:
    """One sweep with every kind of work due: an expiry, a reminder, a notice and a consent email in the outbox."""

    name = "sweep"
    atomic = False  # it commits claim by claim

    def prepare(self, world: World) -> None:
        api = world.api
        northwind = Caller(NORTHWIND, ["incentives_user"], world.context)
        adatum = Caller(ADATUM, ["incentives_user"], world.context)
        api.add_claim()  # consent never requested: expires 30 days on
        world.clock.advance(7 * DAY)
        api.requested_by(api.add_claim(northwind_body(), caller=northwind), caller=northwind)  # 7-day reminder due
        world.clock.advance(23 * DAY + timedelta(minutes=50))
        tailspin = api.add_claim(
            add_customer_body(
                location_id=ADATUM_LISBON,
                identifier={"type": "domain", "value": "tailspintoys.com"},
                engagement_ids=[SECURITY],
                customer_contact={"name": "Jo Park", "email": "jo@tailspintoys.com", "language": "en"},
                partner_contact={"name": "Rui Costa", "email": "rui@adatum-services.com"},
            ),
            caller=adatum,
        )
        token = api.requested_by(tailspin, caller=adatum)
        SesThrottle(sesv2(), times=1)
        assert api.decide(token, "accept").status == 200  # the partner's notice stays in the outbox
        wideworld = api.add_claim(
            add_customer_body(
                identifier={"type": "domain", "value": "wideworldimporters.com"},
                engagement_ids=[SECURITY],
                customer_contact={"name": "Li Wei", "email": "li@wideworldimporters.com", "language": "en"},
            )
        )
        SesThrottle(sesv2(), times=1)
        assert api.request(wideworld, FIRST_REQUEST).status == 503  # the consent email stays in the outbox
        world.clock.advance(timedelta(minutes=10))

    def act(self, world: World) -> Outcome:
        return world.sweep()

    def retry(self, world: World, first: Outcome) -> Outcome | None:
        return None  # the next scheduled run (the settling sweep) is the retry


SCENARIOS: list[Scenario] = [
    AddCustomer(),
    ClaimCustomer(),
    ConsentSend(),
    ConsentCallback(),
    Submission(),
    Review(),
    Sweep(),
]


# ---------------------------------------------------------------- fixtures and the summary


@pytest.fixture(autouse=True)
def lean_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    lean_moto(monkeypatch)


@pytest.fixture
def world(dynamodb: DynamoDBClient, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    clock = FixedClock(NOW)
    wiring.use_clock(clock)
    metrics = MemoryMetrics()
    wiring.use_metrics(metrics)
    wiring.services().reference.save(demo_data())
    api = lifecycle_api(lambda_context)
    api.ops = Caller(OPERATIONS_PARTNER, OPERATIONS_ROLES, lambda_context)
    injector = FaultInjector()
    injector.install(monkeypatch)
    yield World(
        api=api,
        injector=injector,
        store=Store(clock),
        clock=clock,
        client=dynamodb,
        context=lambda_context,
        metrics=metrics,
    )
    wiring.use_metrics(None)
    wiring.use_clock(SystemClock())


@pytest.fixture(scope="module")
def summary(request: pytest.FixtureRequest) -> Iterator[dict[str, Tally]]:
    """Faults injected per operation, reported in one line at the end of the module."""
    tallies: dict[str, Tally] = {}
    started = time.monotonic()
    yield tallies
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    kinds: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    writers: Counter[str] = Counter()
    for tally in tallies.values():
        kinds.update(tally.kinds)
        outcomes.update(tally.outcomes)
        writers.update(tally.writers)
    per_operation = ", ".join(f"{name} {t.calls} calls/{t.faults} faults" for name, t in tallies.items())
    line = (
        f"Fault injection: {sum(t.faults for t in tallies.values())} faults over {len(tallies)} operations "
        f"({per_operation}) in {time.monotonic() - started:.0f}s; by kind: "
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        + "; outcomes: "
        + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
        + "; concurrent writers: "
        + ", ".join(f"{n} {w}" for w, n in sorted(writers.items()))
    )
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(line)


def _only() -> Any:
    wanted = os.environ.get("FAULTS_ONLY")
    if not wanted:
        return None
    return lambda call, kind: kind is Kind(wanted)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name.replace(" ", "_") for s in SCENARIOS])
def test_every_aws_call_fails_in_turn(scenario: Scenario, world: World, summary: dict[str, Tally]) -> None:
    tally = exercise(world, scenario, only=_only())
    summary[scenario.name] = tally
    assert tally.calls > 0
    assert not tally.problems, f"{len(tally.problems)} of {tally.faults} faults went wrong:\n" + "\n".join(
        tally.problems
    )


def test_the_injector_fails_the_call_it_names(world: World) -> None:
    """The harness itself: a fault lands on the call it names, and only there."""
    scenario = Submission()
    scenario.prepare(world)
    saved = world.store.save()
    with world.injector.recording() as recorder:
        scenario.act(world)
    calls: list[Call] = list(recorder.calls)
    world.store.restore(saved)
    transaction = next(c for c in calls if c.operation == "TransactWriteItems")
    with world.injector.recording(Fault(transaction.index, Kind.THROTTLING)) as recorder:
        answer = scenario.act(world)
    assert answer.status == 503, answer
    assert world.injector.injected[-1][1] == transaction
    assert [c.operation for c in recorder.calls[: transaction.index + 1]] == [
        c.operation for c in calls[: transaction.index + 1]
    ]


# ---------------------------------------------------------------- the findings, one fault each


def one_fault(world: World, scenario: Scenario, operation: str, kind: Kind, table: str | None = None) -> Tally:
    """``scenario`` with ``kind`` on each call of ``operation`` (on ``table``), judged as the full suite judges."""
    tally = exercise(
        world, scenario, only=lambda call, k: (call.operation, k) == (operation, kind) and table in (None, call.table)
    )
    assert tally.faults >= 1
    assert not tally.problems, "\n".join(tally.problems)
    return tally


def test_a_failing_idempotency_table_is_a_503_not_a_500(world: World) -> None:
    """Powertools wraps the store's error in IdempotencyPersistenceLayerError, which reached the catch-all."""
    tally = one_fault(world, Submission(), "PutItem", Kind.THROTTLING, table="IdempotencyTable")
    assert tally.outcomes == Counter({"503 with Retry-After": 1})


def test_a_response_lost_after_the_work_is_recorded_still_answers_the_work(world: World) -> None:
    """The claims were created; only saving the idempotent response failed: answer them, save it again."""
    tally = one_fault(world, AddCustomer(), "UpdateItem", Kind.INTERNAL_ERROR, table="IdempotencyTable")
    assert tally.outcomes == Counter({"absorbed (answered as a clean run)": 1})


@pytest.mark.parametrize("kind", [Kind.LOST_RESPONSE, Kind.RESENT_AFTER_LOSS], ids=str)
@pytest.mark.parametrize("scenario", [AddCustomer(), Submission(), Review(), ConsentCallback()], ids=lambda s: s.name)
def test_a_transaction_that_landed_is_not_a_conflict_with_itself(world: World, scenario: Scenario, kind: Kind) -> None:
    """A lost answer (or the SDK's resend tripping on its own first attempt) used to end in 409 duplicate_claim or
    invalid_state, or the neutral 'link used' page, for a change that was made: the claim item is read back."""
    tally = one_fault(world, scenario, "TransactWriteItems", kind)
    assert set(tally.outcomes) == {"absorbed (answered as a clean run)"}


def test_a_sent_consent_email_whose_record_is_throttled_is_not_sent_again(world: World) -> None:
    """The email went out; recording it was throttled: the record is retried, so neither the client's retry nor
    the sweep's redelivery sends a second email with a new link."""
    tally = one_fault(world, ConsentSend(), "TransactWriteItems", Kind.THROTTLING)
    assert tally.outcomes["absorbed (answered as a clean run)"] == 1  # the second transaction, after the send


def test_a_consent_email_ses_took_whose_every_record_is_throttled_keeps_its_link_live(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SES took the consent email; every DynamoDB write after it stays throttled (the record, the idempotency
    record). The client got a 503, its retry sent a second email with a new link and deleted the first: the customer
    who clicked the first email got the neutral "not valid" page. Now the partner hears the truth (200, the email
    sent), the retry's email keeps the first link live beside its own, and either link takes the decision."""
    claim_id = world.api.add_claim()
    outage = Outage(frozenset({"dynamodb"}), writes_only=True, after="SendEmail")
    outage.install(monkeypatch)
    mark = len(world.metrics.counts)
    with world.injector.recording() as recorder:
        with outage.during():
            first = world.api.request(claim_id, FIRST_REQUEST, key=KEY)
        assert {c.operation for c in outage.failed} >= {"TransactWriteItems"}  # the record stayed throttled
        retried = retry_until_answered(world, lambda: Outcome.of(world.api.request(claim_id, FIRST_REQUEST, key=KEY)))
        world.clock.advance(timedelta(minutes=10))
        assert world.sweep().error is None
        links = [e.token for e in recorder.emails if e.kind == "consent_request"]

    assert (first.status, first.body["consent_email"]["status"]) == (200, "sent"), first.body
    assert retried.status == 200, retried.body
    assert len(links) == 2  # the retry cannot know SES took the first: at least once, never a dead link
    assert all(link is not None and world.api.page(link).status == 200 for link in links)
    assert world.counted_since(mark)[("ConsentEmailsOut", ())] == 1  # one consent email counted (recorded once)
    assert world.api.decide(str(links[0]), "accept").status == 200
    assert world.api.claim(claim_id)["state"] == "consent_granted"
    assert [world.api.page(str(link)).status for link in links] == [404, 404]  # a used link opens nothing


@pytest.mark.parametrize("kind", [Kind.LOST_RESPONSE, Kind.INTERNAL_ERROR], ids=str)
def test_a_consent_email_whose_ses_answer_is_unknown_keeps_its_link_live_through_the_retry(
    world: World, kind: Kind
) -> None:
    """SES may have taken the email (its answer lost, or a 5xx): the client's retry sends it again with a new link,
    and used to delete the first one, so a customer who got the first email held a dead link."""
    scenario = ConsentSend()
    scenario.prepare(world)
    saved = world.store.save()
    with world.injector.recording() as recorder:
        scenario.act(world)
    send = next(c for c in recorder.calls if c.operation == "SendEmail")
    world.store.restore(saved)

    with world.injector.recording(Fault(send.index, kind)) as recorder:
        first = scenario.act(world)
        maybe_sent = world.store.claims()[scenario.claim_id].consent_token_hash
        retried = scenario.retry(world, first)
        links = [e.token for e in recorder.emails if e.kind == "consent_request"]

    assert (first.status, retried.status) == (503, 200), (first, retried)
    after = world.store.claims()[scenario.claim_id]
    assert maybe_sent in after.live_token_hashes  # kept live beside the retry's new link
    assert after.consent_token_hash == token_hash(str(links[-1]))  # the newest link is the claim's current one
    assert [world.api.page(str(link)).status for link in dict.fromkeys(links)] == [200] * len(set(links))


@pytest.mark.parametrize("kind", [Kind.THROTTLING, Kind.CONFLICT], ids=str)
def test_a_notice_sent_whose_outbox_record_fails_is_neither_a_503_nor_sent_twice(world: World, kind: Kind) -> None:
    """The customer's decision is committed and the partner's notice sent; removing it from the outbox failed
    (throttled, or a concurrent change): the customer used to see a 503, then 'link used', and the partner got
    the notice twice."""
    tally = one_fault(world, ConsentCallback(), "TransactWriteItems", kind)
    assert tally.outcomes["absorbed (answered as a clean run)"] >= 1


def test_a_busy_consent_page_asks_to_try_again(world: World) -> None:
    """A 503 on the decision said 'this link is not valid', so nobody would press the button again."""
    tally = one_fault(world, ConsentCallback(), "GetItem", Kind.THROTTLING)
    assert set(tally.outcomes) == {"503 with Retry-After"}


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutItem"),
        ConnectionClosedError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
    ids=["unlisted-5xx", "connection-closed"],
)
def test_any_5xx_and_a_dropped_connection_are_retryable(error: Exception) -> None:
    """Not only the codes on the list: a 5xx or a dropped connection is the service's trouble, never a 500."""
    with pytest.raises(DependencyUnavailable), dependency("DynamoDB"):
        raise error
    assert outcome_unknown(error)


# ---------------------------------------------------------------- permanent failures (issue 17, items 1 and 2)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name.replace(" ", "_") for s in SCENARIOS])
def test_every_aws_call_fails_for_good_in_turn(scenario: Scenario, world: World) -> None:
    """Validation errors, MessageRejected (SES), access denied and a missing resource on every call: a 4xx the
    client can act on or a 503 for operators, never a 500; the sweep goes on with its other claims."""
    tally = exercise_permanent(world, scenario, only=_only())
    assert tally.faults > 0
    assert not tally.problems, f"{len(tally.problems)} of {tally.faults} faults went wrong:\n" + "\n".join(
        tally.problems
    )


def test_a_sweep_batch_with_a_poison_claim_processes_every_other_claim(world: World) -> None:
    """Issue 17, item 1: SES refused one claim's reminder for good (MessageRejected); the sweep raised on it every
    run, and the claims after it in the batch were neither expired nor reminded."""
    scenario = Sweep()
    scenario.prepare(world)
    saved = world.store.save()
    with world.injector.recording() as recorder:
        clean = scenario.act(world)
    sends = [c for c in recorder.calls if c.operation == "SendEmail"]
    reminder = sends[[e.kind for e in recorder.emails].index("consent_reminder")]
    world.store.restore(saved)
    before = world.store.claims()

    with world.injector.recording(Fault(reminder.index, Kind.MESSAGE_REJECTED)):
        answer = scenario.act(world)

    assert answer.error is None, answer
    assert answer.body == {**clean.body, "reminded": clean.body["reminded"] - 1, "poisoned": 1}
    [poisoned] = [c for c in world.store.claims().values() if c.email_failures]
    assert [(f.kind, f.reason) for f in poisoned.email_failures] == [("consent_reminder", "email_rejected")]
    assert poisoned.pending_notices == []  # recorded, never retried
    assert len(poisoned.reminders_sent) == len(before[poisoned.claim_id].reminders_sent) + 1
    world.clock.advance(timedelta(hours=1))
    with world.injector.recording() as recorder:
        assert world.sweep().body["poisoned"] == 0
    assert recorder.emails == []


class Crash(Exception):
    """The sweep's Lambda dying (timeout, out of memory) right after a write."""


def test_a_sweep_that_dies_after_marking_a_reminder_sends_it_once_on_a_later_run(world: World) -> None:
    """Issue 12, item 13: the sweep marked a reminder sent, then sent it: a crash in between lost it."""
    scenario = Sweep()
    scenario.prepare(world)
    before = world.store.claims()

    def die_after_the_mark(call: Call) -> None:
        marked = [
            c for c in world.store.claims().values() if len(c.reminders_sent) > len(before[c.claim_id].reminders_sent)
        ]
        if marked:
            world.injector.after_write = None
            raise Crash(call.label)

    world.injector.after_write = die_after_the_mark
    with world.injector.recording() as recorder, pytest.raises(Crash):
        scenario.act(world)
    died = list(recorder.emails)
    world.injector.after_write = None
    world.clock.advance(timedelta(minutes=10))
    with world.injector.recording() as recorder:
        world.sweep()
        world.clock.advance(timedelta(hours=1))
        world.sweep()
    reminders = [e for e in [*died, *recorder.emails] if e.kind == "consent_reminder"]
    assert len(reminders) == 1, reminders
    assert all(not c.pending_notices for c in world.store.claims().values())


def test_a_stream_batch_with_a_poison_record_publishes_every_other_record(world: World) -> None:
    """Issue 17, item 1: a record the publisher cannot read raised out of the handler, so Lambda retried the whole
    batch, and with ordering kept, every later change of the shard waited six hours for the queue."""
    world.api.add_claim()
    world.api.add_claim(add_customer_body(engagement_ids=[SECURITY]))
    images = [raw for raw in world.store.raw_items() if raw.get("type") == {"S": "claim"}]
    broken = {"PK": {"S": "CLAIM#broken"}, "SK": {"S": "CLAIM"}, "type": {"S": "claim"}, "state": {"S": "lost"}}
    records = [
        {"eventName": "INSERT", "dynamodb": {"NewImage": image, "SequenceNumber": str(n)}}
        for n, image in enumerate([images[0], broken, images[1]])
    ]
    events = boto3.client("events", region_name="us-east-1")
    with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
        events.create_event_bus(Name=get_settings().event_bus_name)
    handler = importlib.import_module("functions.publish_events.app").lambda_handler

    with world.injector.recording() as recorder:
        answer = handler({"Records": records}, world.context)

    assert answer == {"batchItemFailures": []}  # the poison record is passed over, never retried
    assert [c.operation for c in recorder.calls] == ["PutEvents", "PutEvents"]  # both ClaimCreated events
