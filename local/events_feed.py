"""Domain events on the local stack (SPEC §6, rule 20): the stream publisher runs here too, and a page shows
what it published.

    GET /_local/events          the events published on the bus, newest first, as a page
    GET /_local/events.json     {items: [{id, detail_type, source, time, detail}]}, newest first

On AWS, Lambda polls the claims table's stream and invokes PublishEventsFunction with batches of records
(template.yaml, its ``DynamoDB`` event). moto keeps the stream (``dynamodbstreams``) but invokes nothing,
so ``StreamPoller`` does Lambda's part with the settings of that event: it reads new records from every
shard, keeps those the event's ``FilterCriteria`` match, invokes the real handler through ``stack.invoke``
with a Lambda-shaped DynamoDB stream event of at most ``BatchSize`` records, and honours
``batchItemFailures``: the next poll re-delivers from the first failed record (an invocation that raises
re-delivers its whole batch), forever while ``MaximumRetryAttempts`` is -1.

What the handler publishes goes to the stack's custom bus in moto (created here, named as the template
names it for the function). A rule on that bus matching ``{"source": ["mci.customers"]}`` and the newest
detail version the publisher puts (``PUBLISHED_EVENT_VERSIONS``: v2 by default, docs/events.md#versions)
targets an SQS queue, which ``EventCapture`` drains into the last ``KEEP`` events: exactly what a consumer's
rule for that version would receive, each change once. A daemon thread polls every
``LOCAL_EVENTS_POLL_SECONDS`` (default 1; 0: only when a page is read); reading either page polls first, so it
is never behind the table.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local import background
from local.api_stack import ApiStack
from local.aws_env import REGION
from local.cloudformation import FUNCTION_TYPE
from local.pages import page
from local.server import LocalRequest, LocalResponse, local_route

PUBLISHER = "PublishEventsFunction"
SOURCE = "mci.customers"  # mci.domain.events.SOURCE; the rule below matches every event of the service
DEFAULT_VERSIONS = "1,2"  # mci.settings' published_event_versions (the template's PublishedEventVersions)
LATEST_VERSION = "2"  # the newest of mci.domain.events.SCHEMA_VERSIONS
FEED_NAME = "local-events-feed"  # the capturing rule and its queue
KEEP = 500
PAGE_PATH = "/_local/events"
JSON_PATH = "/_local/events.json"
INTERVAL_VARIABLE = "LOCAL_EVENTS_POLL_SECONDS"
DEFAULT_INTERVAL_SECONDS = 1.0

log = logging.getLogger("local.events_feed")


# ---------------------------------------------------------------- the trigger, as the template sets it


@dataclass(frozen=True)
class StreamTrigger:
    """What Lambda's stream poller is told by a function's ``DynamoDB`` event in the template."""

    table: str  # logical id of the table whose stream it reads
    batch_size: int = 100
    filters: tuple[Mapping[str, Any], ...] = ()
    report_batch_item_failures: bool = False
    maximum_retry_attempts: int = -1  # -1: until it succeeds


def stream_trigger(template: Mapping[str, Any], logical_id: str = PUBLISHER) -> StreamTrigger:
    """The one ``DynamoDB`` event of the function ``logical_id``."""
    resource = (template.get("Resources") or {}).get(logical_id) or {}
    if resource.get("Type") != FUNCTION_TYPE:
        raise KeyError(f"no {FUNCTION_TYPE} named {logical_id} in the template")
    events = (resource.get("Properties") or {}).get("Events") or {}
    found = [event.get("Properties") or {} for event in events.values() if event.get("Type") == "DynamoDB"]
    if len(found) != 1:
        raise ValueError(f"{logical_id} has {len(found)} DynamoDB events; the local poller drives exactly one")
    properties = found[0]
    stream = properties.get("Stream") or {}
    table, attribute = (stream.get("Fn::GetAtt") or [None, None]) if isinstance(stream, dict) else (None, None)
    if not table or attribute != "StreamArn":
        raise ValueError(f"{logical_id}: Stream must be !GetAtt <table>.StreamArn, not {stream!r}")
    filters = tuple(
        json.loads(entry["Pattern"]) for entry in (properties.get("FilterCriteria") or {}).get("Filters") or []
    )
    return StreamTrigger(
        table=str(table),
        batch_size=int(properties.get("BatchSize", 100)),
        filters=filters,
        report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
        maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
    )


def matches(pattern: Any, value: Any) -> bool:
    """The part of Lambda's event filtering the template uses: nested objects and lists of exact values."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            name in value and matches(expected, value[name]) for name, expected in pattern.items()
        )
    if isinstance(pattern, list):
        return any(value == option for option in pattern)
    raise ValueError(f"unsupported filter pattern {pattern!r}")


def passes(record: Mapping[str, Any], filters: Sequence[Mapping[str, Any]]) -> bool:
    """Lambda's rule: no filters keep everything; otherwise a record must match at least one."""
    return not filters or any(matches(pattern, record) for pattern in filters)


# ---------------------------------------------------------------- stream records as Lambda delivers them


def lambda_record(record: Mapping[str, Any], stream_arn: str, region: str = REGION) -> dict[str, Any]:
    """A record read with ``GetRecords`` (boto3 shapes) as Lambda puts it in the event: epoch seconds,
    ``eventSourceARN``, the images in DynamoDB JSON as read."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record.get("eventID"),
        "eventName": record.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion") or region,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }


def _sequence(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


@dataclass
class PollReport:
    read: int = 0  # new records on the stream
    delivered: int = 0  # records handed to the function (a re-delivery counts again)
    invocations: int = 0
    failures: int = 0  # invocations that raised or reported a failed record


class StreamPoller:
    """Lambda's poller for one function and one stream: every call to ``poll_once`` catches up."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        trigger: StreamTrigger,
        region: str = REGION,
    ) -> None:
        self.streams = streams
        self.stream_arn = stream_arn
        self.invoke = invoke
        self.trigger = trigger
        self.region = region
        self._positions: dict[str, str | None] = {}  # shard -> last record done with (None: none yet)
        self._attempts: dict[str, int] = {}  # shard -> failed attempts at its current position

    def skip_existing(self) -> None:
        """Start after the records already on the stream (``LATEST``), instead of at ``TRIM_HORIZON``."""
        for shard_id in self._shards():
            records = self._records_after(shard_id, self._positions.get(shard_id))
            if records:
                self._positions[shard_id] = _sequence(records[-1])

    def poll_once(self) -> PollReport:
        report = PollReport()
        for shard_id in self._shards():
            self._poll_shard(shard_id, report)
        return report

    def _shards(self) -> Iterator[str]:
        request: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self.streams.describe_stream(**request)["StreamDescription"]
            for shard in description.get("Shards", []):
                yield str(shard["ShardId"])
            last = description.get("LastEvaluatedShardId")
            if not last:
                return
            request["ExclusiveStartShardId"] = last

    def _records_after(self, shard_id: str, position: str | None) -> list[dict[str, Any]]:
        request: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
        if position is None:
            request["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=position)
        iterator = self.streams.get_shard_iterator(**request).get("ShardIterator")
        records: list[dict[str, Any]] = []
        while iterator:
            page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            if not page.get("Records"):
                break
            records.extend(page["Records"])
            iterator = page.get("NextShardIterator")
        return records

    def _poll_shard(self, shard_id: str, report: PollReport) -> None:
        position = self._positions.get(shard_id)
        raw = [lambda_record(r, self.stream_arn, self.region) for r in self._records_after(shard_id, position)]
        report.read += len(raw)
        if not raw:
            return
        kept = [i for i, record in enumerate(raw) if passes(record, self.trigger.filters)]
        batches = [
            kept[start : start + self.trigger.batch_size] for start in range(0, len(kept), self.trigger.batch_size)
        ]
        for number, batch in enumerate(batches):
            failed_at = self._deliver([raw[i] for i in batch], report)
            if failed_at is not None:
                # Re-deliver from the failed record next time; the records before it are done.
                first = batch[failed_at]
                self._positions[shard_id] = _sequence(raw[first - 1]) if first > 0 else position
                if self._give_up(shard_id):
                    last = batch[-1]
                    print(
                        f"{time.strftime('%H:%M:%S')} {PUBLISHER}: gave up on records "
                        f"{_sequence(raw[first])}..{_sequence(raw[last])} after "
                        f"{self.trigger.maximum_retry_attempts} retries (on AWS: the on-failure destination)",
                        flush=True,
                    )
                    self._positions[shard_id] = _sequence(raw[last])
                return
            self._attempts.pop(shard_id, None)
            done = batches[number + 1][0] - 1 if number + 1 < len(batches) else len(raw) - 1
            position = self._positions[shard_id] = _sequence(raw[done])
        # Records the filters dropped (and none kept at all) are done with too.
        self._positions[shard_id] = _sequence(raw[-1])

    def _deliver(self, records: list[dict[str, Any]], report: PollReport) -> int | None:
        """Invoke once; the index of the first record to re-deliver, or None when the batch is done."""
        report.invocations += 1
        report.delivered += len(records)
        try:
            result = self.invoke({"Records": records})
        except Exception:
            traceback.print_exc()
            report.failures += 1
            return 0
        if not self.trigger.report_batch_item_failures:
            return None
        failures = result.get("batchItemFailures") if isinstance(result, dict) else None
        if not failures:
            return None
        report.failures += 1
        sequences = [_sequence(r) for r in records]
        failed = {str(f.get("itemIdentifier")) for f in failures if isinstance(f, dict)}
        # Lambda re-delivers from the lowest failed sequence number; an unknown identifier fails the batch.
        positions = [sequences.index(s) for s in failed if s in sequences]
        if len(positions) != len(failed):
            return 0
        at = min(positions)
        print(
            f"{time.strftime('%H:%M:%S')} {PUBLISHER}: record {sequences[at]} not published; re-delivering from it",
            flush=True,
        )
        return at

    def _give_up(self, shard_id: str) -> bool:
        attempts = self._attempts[shard_id] = self._attempts.get(shard_id, 0) + 1
        limit = self.trigger.maximum_retry_attempts
        if limit < 0 or attempts <= limit:
            return False
        self._attempts.pop(shard_id, None)
        return True


# ---------------------------------------------------------------- what reached the bus


def newest_version(published: str | None) -> str:
    """The newest detail version of a PUBLISHED_EVENT_VERSIONS value ("1", "2" or "1,2"; unset: the default, both)."""
    return (published or DEFAULT_VERSIONS).split(",")[-1].strip()


def provision_capture(
    events: Any, sqs: Any, bus_name: str, name: str = FEED_NAME, schema_version: str = LATEST_VERSION
) -> str:
    """The bus (when missing), and a rule on it sending every event of the service in one detail version (a
    consumer's rule: each change once) to a queue: its URL."""
    with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
        events.create_event_bus(Name=bus_name)
    queue_url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [SOURCE], "detail": {"schema_version": [schema_version]}}
    events.put_rule(Name=name, EventBusName=bus_name, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=name, EventBusName=bus_name, Targets=[{"Id": name, "Arn": queue_arn}])
    return queue_url


@dataclass
class EventCapture:
    """The events a rule delivered to ``queue_url``, oldest first, the last ``keep`` of them."""

    sqs: Any
    queue_url: str
    keep: int = KEEP
    _events: deque[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self._events = deque(maxlen=self.keep)

    def drain(self) -> int:
        """Move every message waiting in the queue into the feed; how many."""
        moved = 0
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return moved
            for message in messages:
                with contextlib.suppress(ValueError):
                    self._events.append(json.loads(message["Body"]))
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            moved += len(messages)

    def clear(self) -> None:
        self._events.clear()

    def items(self) -> list[dict[str, Any]]:
        """Newest first, as the JSON page lists them."""
        return [
            {
                "id": event.get("id"),
                "detail_type": event.get("detail-type"),
                "source": event.get("source"),
                "time": event.get("time"),
                "detail": event.get("detail"),
            }
            for event in reversed(self._events)
        ]


# ---------------------------------------------------------------- the feed of one local stack


class EventsFeed:
    """The poller and the capture, refreshed together; a daemon thread refreshes every ``interval`` s."""

    def __init__(self, poller: StreamPoller, capture: EventCapture, interval: float) -> None:
        self.poller = poller
        self.capture = capture
        self.interval = interval
        self._lock = threading.Lock()
        self._loop = background.BackgroundLoop(
            "local-events", interval, self.refresh, "events feed: polling the stream failed"
        )

    def refresh(self) -> PollReport:
        with self._lock:
            report = self.poller.poll_once()
            self.capture.drain()
            return report

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return self.capture.items()

    def start(self) -> EventsFeed:
        if self.interval > 0:
            self._loop.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._loop.stop(timeout)

    @property
    def running(self) -> bool:
        return self._loop.running


_FEEDS: weakref.WeakKeyDictionary[ApiStack, EventsFeed] = weakref.WeakKeyDictionary()


def interval_from_environment() -> float:
    """LOCAL_EVENTS_POLL_SECONDS: seconds between polls, 0 for none. A bad value keeps the default."""
    return background.interval_from_environment(INTERVAL_VARIABLE, DEFAULT_INTERVAL_SECONDS, "polling")


def start(stack: ApiStack, interval: float | None = None) -> EventsFeed | None:
    """Provision the bus and the capture in moto, then poll the stream (``LocalStack`` calls this as it starts).

    None when the template has no PublishEventsFunction: nothing publishes, so there is nothing to show.
    """
    if PUBLISHER not in stack.functions:
        log.warning("the template has no %s: no domain events locally", PUBLISHER)
        return None

    trigger = stream_trigger(stack.template)
    table = stack.table_names.get(trigger.table, trigger.table)
    stream_arn = str(stack.aws_client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"])
    bus_name = stack.environment["EVENT_BUS_NAME"]
    sqs = stack.aws_client("sqs")
    version = newest_version(stack.environment.get("PUBLISHED_EVENT_VERSIONS"))
    capture = EventCapture(sqs, provision_capture(stack.aws_client("events"), sqs, bus_name, schema_version=version))
    poller = StreamPoller(
        stack.aws_client("dynamodbstreams"), stream_arn, lambda event: stack.invoke(PUBLISHER, event), trigger
    )
    # Its tables are new, so TRIM_HORIZON is where the stack starts. Only when moto's backends outlived an
    # earlier stack of this process (tests) are there records already: they belong to that stack.
    poller.skip_existing()
    capture.drain()
    capture.clear()
    feed = EventsFeed(poller, capture, interval_from_environment() if interval is None else interval)
    _FEEDS[stack] = feed
    return feed.start()


def feed_of(stack: ApiStack) -> EventsFeed | None:
    return _FEEDS.get(stack)


# ---------------------------------------------------------------- pages


def _subject(detail: Any) -> str:
    if not isinstance(detail, dict):
        return ""
    if "referral_id" in detail and "to_state" not in detail:
        return f"referral {detail['referral_id']} ({detail.get('type')}, claim {detail.get('claim_id')})"
    change = f"{detail.get('from_state') or '-'} -> {detail.get('to_state')}"
    return f"claim {detail.get('claim_id')} v{detail.get('claim_version')}: {change}"


def _events_page(items: list[dict[str, Any]]) -> LocalResponse:
    count = f"{len(items)} event{'' if len(items) == 1 else 's'}, newest first" if items else "No events yet"
    parts = [
        "<h1>Local domain events</h1>",
        f'<p class="meta">{count} (the last {KEEP} at most). Published by {PUBLISHER} from the table\'s '
        f"stream onto the bus in moto; nothing leaves this machine. Reload to see new ones; "
        f'<a href="{JSON_PATH}">JSON</a>.</p>',
    ]
    if items:
        parts.append(
            '<table><thead><tr><th scope="col">Time</th><th scope="col">Event</th>'
            '<th scope="col">What changed</th></tr></thead><tbody>'
        )
        for item in items:
            detail = json.dumps(item["detail"], indent=2, sort_keys=True)
            parts.append(
                f'<tr><td class="when">{html.escape(str(item["time"] or ""))}</td>'
                f"<td>{html.escape(str(item['detail_type'] or ''))}</td>"
                f'<td class="subject code">{html.escape(_subject(item["detail"]))}'
                f"<details><summary>Detail</summary><pre>{html.escape(detail)}</pre></details></td></tr>"
            )
        parts.append("</tbody></table>")
    return page(200, "Local domain events", "\n".join(parts))


def _fresh_items(stack: ApiStack) -> list[dict[str, Any]] | None:
    feed = feed_of(stack)
    if feed is None:
        return None
    feed.refresh()
    return feed.items()


def _not_running() -> LocalResponse:
    return LocalResponse.message(503, "The events feed is not running (the stack is not started)")


@local_route("GET", PAGE_PATH)
def events_page(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The domain events published on the bus, newest first, as a page."""
    items = _fresh_items(stack)
    if items is None:
        return _not_running()
    return _events_page(items)


@local_route("GET", JSON_PATH)
def events_json(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The domain events as {items: [{id, detail_type, source, time, detail}]}, newest first."""
    items = _fresh_items(stack)
    if items is None:
        return _not_running()
    return LocalResponse.json(200, {"items": items}, [("Cache-Control", "no-store")])
