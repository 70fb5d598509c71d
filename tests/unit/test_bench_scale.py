"""The scale section's logic: the outbox drain model, billing units, and the constants it takes from the sources."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from bench import scale
from bench.scale import drain, item_size, read_units, write_units
from local.cloudformation import load_template
from mci.domain.claims import CONSENT_EMAIL_RETRY
from mci.domain.expiry import Sweep


def test_a_burst_within_the_sending_rate_never_reaches_the_outbox() -> None:
    found = drain(1000, offered_per_second=10, ses_per_second=14)
    assert found.sent_on_request == 1000
    assert found.throttled_to_outbox == 0
    assert found.sweep_runs == 0
    assert found.last_email_seconds == found.last_request_seconds == 100.0


def test_what_ses_throttles_waits_for_the_sweep_and_a_throttled_redelivery_for_the_next_run() -> None:
    # 30 requests in the first second, SES takes 10 a second: 20 stay pending; the run at 300 s sends them
    # one after the other (20 calls a second), SES takes 10 of them, the run at 600 s the last 10.
    found = drain(30, offered_per_second=30, ses_per_second=10)
    assert found.sent_on_request == 10
    assert found.throttled_to_outbox == 20
    assert found.sweep_runs == 2
    assert found.last_email_seconds == 601.0


def test_the_sweep_redelivers_at_most_its_batch_per_run() -> None:
    found = drain(1300, offered_per_second=1300, ses_per_second=100, call_seconds=0.01)
    assert found.throttled_to_outbox == 1200
    assert found.sweep_runs == 3  # 500, 500, 200
    assert found.last_email_seconds == 3 * 300 + 2.0  # the third run's 200 sends at 100 a second


def test_a_pending_email_is_redelivered_only_after_the_retry_time() -> None:
    # Throttled in second 0 of a 10-minute burst: the run at 300 s finds the first ones due, not the later ones.
    found = drain(12_000, offered_per_second=20, ses_per_second=10)
    assert found.throttled_to_outbox == 6000
    assert found.last_email_seconds > found.last_request_seconds + scale.RETRY_AFTER_SECONDS


def test_billing_units_follow_item_sizes() -> None:
    assert item_size({"PK": {"S": "abc"}}) == 5
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"m": {"M": {"a": {"BOOL": True}}}}) == 1 + 3 + 1 + 1 + 1
    assert write_units(1) == 1
    assert write_units(1024) == 1
    assert write_units(1025) == 2
    assert read_units(4096, consistent=True) == 1.0
    assert read_units(4097, consistent=True) == 2.0
    assert read_units(100, consistent=False) == 0.5


def _route_limits(template: dict[str, Any], path: str) -> int:
    for resource in template["Resources"].values():
        for event in (resource.get("Properties") or {}).get("Events", {}).values():
            properties = event.get("Properties") or {}
            if event.get("Type") == "HttpApi" and properties.get("Path") == path and properties["Method"] == "POST":
                return int(properties["RouteSettings"]["ThrottlingRateLimit"])
    raise AssertionError(path)


def test_the_model_takes_its_constants_from_the_template_and_the_domain() -> None:
    template = load_template()
    assert _route_limits(template, "/customers") == scale.ADD_ROUTE_RATE
    assert _route_limits(template, "/claims/{claim_id}/consent-requests") == scale.CONSENT_ROUTE_RATE
    sweep_events = template["Resources"]["ExpireClaimsFunction"]["Properties"]["Events"]
    expressions = [e["Properties"].get("ScheduleExpression") for e in sweep_events.values()]
    assert "rate(5 minutes)" in expressions
    assert scale.SWEEP_EVERY_SECONDS == 300
    assert Sweep.batch_size == scale.SWEEP_BATCH  # type: ignore[attr-defined]
    assert CONSENT_EMAIL_RETRY.total_seconds() == scale.RETRY_AFTER_SECONDS


def test_the_meter_counts_what_a_transaction_writes_and_what_the_engine_reports() -> None:
    events = SimpleNamespace(register=lambda *_: None)
    meter = scale.CapacityMeter(SimpleNamespace(meta=SimpleNamespace(events=events)))
    claim = {"PK": {"S": "CLAIM#c-1"}, "SK": {"S": "CLAIM"}, "GSI1PK": {"S": "PARTNER#p#ENG#e#ACTIVE"}}
    claim["due_shard"] = {"S": "DUE#3"}
    counter_key = {"PK": {"S": "LIMIT#e#k"}, "SK": {"S": "COUNT"}}
    items = [{"Put": {"TableName": "T", "Item": claim}}, {"Update": {"TableName": "T", "Key": counter_key}}]
    reported = [{"TableName": "T", "CapacityUnits": 6.0, "Table": {"CapacityUnits": 4.0}}]
    reported[0]["GlobalSecondaryIndexes"] = {"GSI1": {"CapacityUnits": 2.0}}
    transaction = SimpleNamespace(name="TransactWriteItems")
    with meter.operation("add"):  # what botocore's before-call and after-call events hand the meter
        meter._sent(params={"body": json.dumps({"TransactItems": items}).encode()}, model=transaction)
        meter._seen(parsed={"ConsumedCapacity": reported, "ResponseMetadata": {"RetryAttempts": 1}}, model=transaction)
    meter.finish({("LIMIT#e#k", "COUNT"): 2000})
    add = meter.operations["add"]
    assert add.calls == 1
    assert add.requests == {"TransactWriteItems": 1}
    assert add.items_written == 2
    assert add.wcu == 2 * 1 + 2 * 2  # the claim's put (under 1 KB) and the 2 KB counter, both in a transaction
    assert add.index_wcu == {"GSI1": 1, "DueIndex": 1}
    assert add.keys_written["GSI1 PARTNER#p#ENG#e#ACTIVE"] == 1
    assert add.keys_written["DueIndex DUE#3"] == 1
    assert add.engine == {"write table": 4.0, "write GSI1": 2.0}
    assert add.retries == 1
    assert meter.engine_units == 6.0
