"""Rule 20 on moto: real flows through the real handlers, moto's DynamoDB stream read as Lambda reads it
(``local.events_feed.StreamPoller``, with the template's batch size, filter and partial batch responses),
the real PublishEventsFunction with the real EventBridge adapter, and what reached the bus captured by a
rule on it that targets an SQS queue (``local.events_feed.EventCapture``), as a consumer would receive it.

In process, botocore (1.44) sends DynamoDB Streams calls to an account-specific endpoint that moto does
not route; the streams client here turns account-id endpoints off.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from local.cloudformation import function_environment, load_template
from local.events import load_event
from local.events_feed import (
    PUBLISHER,
    EventCapture,
    PollReport,
    StreamPoller,
    lambda_record,
    provision_capture,
    stream_trigger,
)
from mci import wiring
from mci.adapters import aws
from mci.adapters.dynamodb_claims import DynamoDBClaimRepository, claim_from_item
from mci.adapters.memory import MemoryMetrics
from mci.domain.claims import ClaimState
from mci.domain.events import EVENT_TYPES, SOURCE
from mci.domain.ports import ClaimChange, ConcurrentChange
from tests.support.consent import FIRST_REQUEST, sent_messages, stored_claim, token_in
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.numbered_customers import numbered_body, numbered_customers
from tests.support.reference import MIGRATE
from tests.unit.test_events import assert_valid_event

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

REGION = "us-east-1"
TABLE = "ClaimsTable"

# ---------------------------------------------------------------- the pipeline


@dataclass
class Pipeline:
    """The stream, the publisher and the bus of one test, on moto in process."""

    poller: StreamPoller
    capture: EventCapture
    delivered: list[list[dict[str, Any]]] = field(default_factory=list)  # each invocation's records

    def publish(self) -> PollReport:
        report = self.poller.poll_once()
        self.capture.drain()
        return report

    def events(self) -> list[dict[str, Any]]:
        """What a consumer of the bus received, oldest first."""
        return self.capture.items()[::-1]

    def of_claim(self, claim_id: str) -> list[str]:
        return [e["detail_type"] for e in self.events() if e["detail"]["claim_id"] == claim_id]


def streams_client() -> Any:
    return boto3.client("dynamodbstreams", region_name=REGION, config=Config(account_id_endpoint_mode="disabled"))


@pytest.fixture
def pipeline(seeded: DynamoDBClient, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    template = load_template()
    bus_name = function_environment(template, PUBLISHER)["EVENT_BUS_NAME"]
    monkeypatch.setenv("EVENT_BUS_NAME", bus_name)
    wiring.reset()  # settings and clients read again, with the publisher's environment
    sqs = boto3.client("sqs", region_name=REGION)
    capture = EventCapture(sqs, provision_capture(boto3.client("events", region_name=REGION), sqs, bus_name))
    stream_arn = seeded.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    handler = importlib.import_module("functions.publish_events.app").lambda_handler
    made = Pipeline(poller=None, capture=capture)  # type: ignore[arg-type]

    def invoke(event: dict[str, Any]) -> Any:
        made.delivered.append(event["Records"])
        return handler(event, lambda_context)

    made.poller = StreamPoller(streams_client(), stream_arn, invoke, stream_trigger(template))
    return made


@pytest.fixture
def api(pipeline: Pipeline, lambda_context: Any) -> LifecycleApi:
    made = lifecycle_api(lambda_context)
    made.load_reference(numbered_customers(range(1, 6)))
    return made


def assert_each_event_valid_and_once(events: list[dict[str, Any]]) -> None:
    ids = [e["detail"]["event_id"] for e in events]
    assert len(ids) == len(set(ids)), f"published more than once: {sorted(i for i in ids if ids.count(i) > 1)}"
    for event in events:
        assert event["source"] == SOURCE
        assert event["detail_type"] in EVENT_TYPES
        assert_valid_event(event["detail_type"], event["detail"])
        assert event["time"] == event["detail"]["occurred_at"][:19] + "Z"


# ---------------------------------------------------------------- one event per committed transition


def flow_completed(api: LifecycleApi, clock: FixedClock) -> str:
    claim_id = api.add_claim()
    api.requested(claim_id)
    clock.advance(timedelta(hours=1))
    assert api.request(claim_id, {}).status == 200  # a resend
    assert api.decide(token_in(str(sent_messages()[-1].body)), "accept").status == 200
    assert api.submit(claim_id).status == 200
    assert api.review(claim_id, "complete").status == 200
    return claim_id


def flow_rejected(api: LifecycleApi, clock: FixedClock) -> str:
    return api.reviewed("reject")


def flow_declined(api: LifecycleApi, clock: FixedClock) -> str:
    return api.declined()


def flow_cancelled(api: LifecycleApi, clock: FixedClock) -> str:
    claim_id = api.add_claim()
    assert api.cancel(claim_id).status == 200
    return claim_id


def flow_expired(api: LifecycleApi, clock: FixedClock) -> str:
    claim_id = api.add_claim()
    api.requested(claim_id)
    clock.advance(timedelta(days=31))
    assert api.sweep()["expired"] == 1
    return claim_id


def flow_no_co_sell(api: LifecycleApi, clock: FixedClock) -> str:
    return api.granted(numbered_body(1, MIGRATE))  # numbered customers do not allow co-sell


FLOWS: dict[str, tuple[Callable[[LifecycleApi, Any], str], list[str]]] = {
    "completed": (
        flow_completed,
        [
            "ClaimCreated",
            "ConsentRequested",
            "ReferralCreated",
            "ConsentRequested",
            "ConsentGranted",
            "ReferralUpgradedToCoSell",
            "ClaimSubmitted",
            "ClaimCompleted",
        ],
    ),
    "rejected": (
        flow_rejected,
        [
            "ClaimCreated",
            "ConsentRequested",
            "ReferralCreated",
            "ConsentGranted",
            "ReferralUpgradedToCoSell",
            "ClaimSubmitted",
            "ClaimRejected",
        ],
    ),
    "declined": (flow_declined, ["ClaimCreated", "ConsentRequested", "ReferralCreated", "ConsentDeclined"]),
    "cancelled": (flow_cancelled, ["ClaimCreated", "ClaimCancelled"]),
    "expired": (flow_expired, ["ClaimCreated", "ConsentRequested", "ReferralCreated", "ClaimExpired"]),
    "granted without co-sell": (
        flow_no_co_sell,
        ["ClaimCreated", "ConsentRequested", "ReferralCreated", "ConsentGranted"],
    ),
}


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_each_committed_transition_publishes_exactly_one_event_of_its_schema(
    flow: str, api: LifecycleApi, pipeline: Pipeline, clock: FixedClock
) -> None:
    run, expected = FLOWS[flow]
    claim_id = run(api, clock)

    report = pipeline.publish()

    assert report.failures == 0
    assert pipeline.of_claim(claim_id) == expected
    assert_each_event_valid_and_once(pipeline.events())
    history = api.claim(claim_id)["history"]
    claim_events = [e["detail"] for e in pipeline.events() if "to_state" in e["detail"]]
    assert [d["to_state"] for d in claim_events if d["from_state"] != d["to_state"]] == [h["to"] for h in history]
    # Caught up: polling again publishes nothing more.
    assert pipeline.publish().invocations == 0
    assert pipeline.of_claim(claim_id) == expected


def test_the_filter_hands_the_publisher_only_claims_and_referrals(api: LifecycleApi, pipeline: Pipeline) -> None:
    api.granted()  # counters, guards, tokens, a known customer and reference data are written too

    report = pipeline.publish()

    kinds = {r["dynamodb"]["NewImage"]["type"]["S"] for batch in pipeline.delivered for r in batch}
    assert kinds == {"claim", "referral"}
    assert report.read > report.delivered > 0
    assert all(len(batch) <= 25 for batch in pipeline.delivered)


def test_a_failed_write_leaves_the_item_and_the_stream_unchanged_and_publishes_nothing(
    api: LifecycleApi, pipeline: Pipeline, dynamodb: DynamoDBClient
) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)
    pipeline.publish()
    published = pipeline.events()
    stored = stored_claim(dynamodb, claim_id)
    stale = claim_from_item(stored).model_copy(update={"version": 1})  # what a slower writer read
    cancelled = stale.transition(ClaimState.CANCELLED, at=stale.updated_at, actor="partner:x/user:y", reason="late")

    with pytest.raises(ConcurrentChange):
        DynamoDBClaimRepository(dynamodb, TABLE).apply(ClaimChange(before=stale, after=cancelled))

    assert stored_claim(dynamodb, claim_id) == stored
    report = pipeline.publish()
    assert (report.read, report.invocations) == (0, 0)
    assert pipeline.events() == published
    assert "ClaimCancelled" not in [e["detail_type"] for e in published]


def test_the_sample_stream_event_publishes_what_its_records_mean(pipeline: Pipeline, lambda_context: Any) -> None:
    event = load_event("publish_events")
    records = event["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "INSERT", "MODIFY"]
    handler = importlib.import_module("functions.publish_events.app").lambda_handler

    assert handler(copy.deepcopy(event), lambda_context) == {"batchItemFailures": []}

    pipeline.capture.drain()
    events = pipeline.events()
    assert [e["detail_type"] for e in events] == ["ClaimCreated", "ConsentRequested", "ReferralCreated"]
    assert_each_event_valid_and_once(events)
    assert {e["detail"]["claim_id"] for e in events} == {records[0]["dynamodb"]["Keys"]["PK"]["S"][len("CLAIM#") :]}


# ---------------------------------------------------------------- publisher failures, the real adapter


class PutEventsFaults:
    """EventBridge's PutEvents as it fails, on the publisher's own client (hooked like botocore's Stubber).

    ``refuse``: event ids to answer with an entry ``ErrorCode`` once each; the other entries of that call are
    really put (on moto) first, as EventBridge publishes them. ``throttle_call``: the n-th PutEvents call
    (1-based) is answered with ThrottlingException and puts nothing.
    """

    def __init__(
        self, refuse: set[str] | None = None, throttle_call: int | None = None, code: str = "InternalFailure"
    ) -> None:
        self.refuse = set(refuse or ())
        self.throttle_call = throttle_call
        self.code = code
        self.calls = 0
        self._moto = boto3.client("events", region_name=REGION)
        aws.events().meta.events.register("before-call.events.PutEvents", self._answer)

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        self.calls += 1
        if self.calls == self.throttle_call:
            error = {
                "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            return AWSResponse(params.get("url", ""), 400, {}, None), error
        entries = json.loads(params["body"])["Entries"]
        refused = [json.loads(e["Detail"])["event_id"] in self.refuse for e in entries]
        if not any(refused):
            return None
        self.refuse -= {json.loads(e["Detail"])["event_id"] for e in entries}
        kept = [e for e, no in zip(entries, refused, strict=True) if not no]
        put = iter(self._moto.put_events(Entries=kept)["Entries"] if kept else [])
        results = [
            {"ErrorCode": self.code, "ErrorMessage": f"refused ({self.code})"} if no else next(put) for no in refused
        ]
        body = {"FailedEntryCount": sum(refused), "Entries": results, "ResponseMetadata": {"HTTPStatusCode": 200}}
        return AWSResponse(params.get("url", ""), 200, {}, None), body


def event_ids_of(pipeline: Pipeline) -> list[str]:
    return [e["detail"]["event_id"] for e in pipeline.events()]


@pytest.mark.parametrize(
    "position",
    [
        0,
        4,
        7,
    ],
    ids=["first", "middle", "last"],
)
def test_an_entry_eventbridge_refuses_is_retried_from_its_record_and_each_event_published_once(
    position: int, api: LifecycleApi, pipeline: Pipeline, clock: FixedClock
) -> None:
    claim_id = flow_completed(api, clock)
    # The events the records on the stream mean, in order, as the publisher will compute them.
    app = importlib.import_module("functions.publish_events.app")
    records = [lambda_record(r, pipeline.poller.stream_arn) for r in _all_records(pipeline)]
    events = [e for r in records if (e := app.event_of(r)) is not None]
    faults = PutEventsFaults(refuse={events[position].event_id})

    first = pipeline.publish()
    second = pipeline.publish()

    assert first.failures == 1
    assert second.failures == 0
    assert faults.refuse == set()
    assert pipeline.of_claim(claim_id) == FLOWS["completed"][1]
    assert_each_event_valid_and_once(pipeline.events())


def test_an_entry_eventbridge_refuses_for_good_is_logged_and_passed_over_and_the_others_published(
    api: LifecycleApi, pipeline: Pipeline, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 17, item 1: a MalformedDetail entry was reported as the batch's failure, retried for six hours and
    held back every later change of the shard."""
    claim_id = flow_completed(api, clock)
    app = importlib.import_module("functions.publish_events.app")
    records = [lambda_record(r, pipeline.poller.stream_arn) for r in _all_records(pipeline)]
    events = [e for r in records if (e := app.event_of(r)) is not None]
    poison = events[2]
    faults = PutEventsFaults(refuse={poison.event_id}, code="MalformedDetail")

    first = pipeline.publish()
    second = pipeline.publish()

    assert (first.failures, second.failures) == (0, 0)
    assert faults.refuse == set()
    expected = [e.detail_type for e in events if e is not poison]
    assert pipeline.of_claim(claim_id) == expected
    assert poison.event_id not in event_ids_of(pipeline)
    assert_each_event_valid_and_once(pipeline.events())
    poisoned = [r for r in caplog.records if r.getMessage() == "poison record"]
    assert [getattr(r, "reason", None) for r in poisoned] == ["refused by EventBridge: MalformedDetail"]


def test_a_record_that_cannot_be_read_is_logged_and_passed_over_and_the_others_published(
    api: LifecycleApi, pipeline: Pipeline, clock: FixedClock, seeded: DynamoDBClient
) -> None:
    """Issue 17, item 1: an unreadable image raised out of the handler, so Lambda retried the whole batch."""
    seeded.put_item(
        TableName=TABLE,
        Item={"PK": {"S": "CLAIM#broken"}, "SK": {"S": "CLAIM"}, "type": {"S": "claim"}, "state": {"S": "lost"}},
    )
    claim_id = flow_completed(api, clock)

    first = pipeline.publish()

    assert first.failures == 0
    assert pipeline.of_claim(claim_id) == FLOWS["completed"][1]
    assert_each_event_valid_and_once(pipeline.events())


def _all_records(pipeline: Pipeline) -> list[dict[str, Any]]:
    poller = pipeline.poller
    shard = poller.streams.describe_stream(StreamArn=poller.stream_arn)["StreamDescription"]["Shards"][0]
    iterator = poller.streams.get_shard_iterator(
        StreamArn=poller.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = poller.streams.get_records(ShardIterator=iterator)["Records"]
    return records


def test_a_throttled_put_events_call_after_the_first_publishes_nothing_twice(
    api: LifecycleApi, pipeline: Pipeline
) -> None:
    claims = [api.add_claim(numbered_body(n, MIGRATE)) for n in range(1, 6)]
    for claim_id in claims:
        assert api.request(claim_id, FIRST_REQUEST).status == 200  # 5 x (created, requested, referral) = 15 events
    faults = PutEventsFaults(throttle_call=2)

    pipeline.publish()
    pipeline.publish()

    assert faults.calls >= 3
    assert_each_event_valid_and_once(pipeline.events())
    assert len(pipeline.events()) == 15


def test_a_throttled_first_call_publishes_each_event_once_after_the_retry(
    api: LifecycleApi, pipeline: Pipeline, clock: FixedClock
) -> None:
    claim_id = flow_completed(api, clock)
    faults = PutEventsFaults(throttle_call=1)

    first = pipeline.publish()
    second = pipeline.publish()

    assert (first.failures, second.failures) == (1, 0)
    assert faults.calls >= 2
    assert pipeline.of_claim(claim_id) == FLOWS["completed"][1]
    assert_each_event_valid_and_once(pipeline.events())


# ---------------------------------------------------------------- the local poller (Lambda's part)


@dataclass
class ScriptedFunction:
    """Stands in for the publisher: records what it is given and answers from a script, then succeeds."""

    answers: list[Callable[[list[dict[str, Any]]], Any]] = field(default_factory=list)
    batches: list[list[str]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any]) -> Any:
        records = event["Records"]
        self.batches.append([r["dynamodb"]["SequenceNumber"] for r in records])
        if self.answers:
            return self.answers.pop(0)(records)
        return {"batchItemFailures": []}


def fail_at(index: int) -> Callable[[list[dict[str, Any]]], Any]:
    return lambda records: {"batchItemFailures": [{"itemIdentifier": records[index]["dynamodb"]["SequenceNumber"]}]}


def crash(records: list[dict[str, Any]]) -> Any:
    raise RuntimeError("the function failed")


def scripted_poller(pipeline: Pipeline, function: ScriptedFunction, batch_size: int = 25) -> StreamPoller:
    trigger = dataclasses.replace(stream_trigger(load_template()), batch_size=batch_size)
    return StreamPoller(pipeline.poller.streams, pipeline.poller.stream_arn, function, trigger)


def test_the_poller_redelivers_from_the_reported_record(api: LifecycleApi, pipeline: Pipeline) -> None:
    api.granted()
    function = ScriptedFunction(answers=[fail_at(3)])
    poller = scripted_poller(pipeline, function)

    first = poller.poll_once()
    second = poller.poll_once()
    third = poller.poll_once()

    assert (first.failures, second.failures, third.invocations) == (1, 0, 0)
    assert function.batches[1] == function.batches[0][3:]
    assert len(function.batches) == 2


def test_the_poller_redelivers_a_whole_batch_when_the_function_raises_or_names_an_unknown_record(
    api: LifecycleApi, pipeline: Pipeline
) -> None:
    api.granted()
    unknown = lambda records: {"batchItemFailures": [{"itemIdentifier": "0"}]}  # noqa: E731
    function = ScriptedFunction(answers=[crash, unknown])
    poller = scripted_poller(pipeline, function, batch_size=4)

    for _ in range(3):
        poller.poll_once()

    assert function.batches[0] == function.batches[1] == function.batches[2]
    assert len(function.batches) > 3  # then the following batches, in order
    delivered = [s for batch in function.batches[2:] for s in batch]
    assert delivered == sorted(delivered, key=int)
    assert len(delivered) == len(set(delivered))


def test_the_poller_shapes_records_as_lambda_delivers_them(api: LifecycleApi, pipeline: Pipeline) -> None:
    api.add_claim()

    pipeline.publish()

    record = pipeline.delivered[0][0]
    assert set(record) == {
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    }
    assert (record["eventName"], record["eventSource"], record["awsRegion"]) == ("INSERT", "aws:dynamodb", REGION)
    assert record["eventSourceARN"] == pipeline.poller.stream_arn
    change = record["dynamodb"]
    assert isinstance(change["ApproximateCreationDateTime"], int)
    assert isinstance(change["SequenceNumber"], str)
    assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert change["Keys"]["PK"]["S"].startswith("CLAIM#")
    assert change["NewImage"]["type"] == {"S": "claim"}


def test_with_a_finite_retry_limit_the_poller_gives_a_batch_up_and_moves_on(
    api: LifecycleApi, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    api.granted()
    function = ScriptedFunction(answers=[crash, crash])
    trigger = dataclasses.replace(stream_trigger(load_template()), batch_size=4, maximum_retry_attempts=1)
    poller = StreamPoller(pipeline.poller.streams, pipeline.poller.stream_arn, function, trigger)

    poller.poll_once()  # fails
    poller.poll_once()  # fails again: more than 1 retry, given up
    poller.poll_once()  # the next batches

    assert function.batches[0] == function.batches[1]
    assert function.batches[2][0] != function.batches[0][0]
    assert int(function.batches[2][0]) > int(function.batches[0][-1])
    assert "gave up on records" in capsys.readouterr().out


def test_a_redelivered_stream_batch_counts_no_business_metric(pipeline: Pipeline, lambda_context: Any) -> None:
    """Lambda delivers stream records at least once: the publisher turns committed changes into events, never into
    counts (they were counted when the change committed), so a batch delivered again moves no metric (issue 15)."""
    metrics = MemoryMetrics()
    wiring.use_metrics(metrics)
    try:
        api = lifecycle_api(lambda_context)
        claim_id = api.add_claim()
        api.accept(claim_id)
        counted = metrics.totals()
        assert counted
        assert pipeline.publish().delivered > 0
        handler = importlib.import_module("functions.publish_events.app").lambda_handler
        for records in list(pipeline.delivered):  # every batch again, as after a lost checkpoint
            assert handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
        assert metrics.totals() == counted
    finally:
        wiring.use_metrics(None)
