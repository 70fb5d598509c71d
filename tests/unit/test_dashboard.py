"""The operations dashboard and the business-metric alarms of template.yaml against what the code emits and what
docs/operations.md lists: nothing charted or alarmed on that nobody emits, nothing emitted that no doc lists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from local.cloudformation import load_template
from mci.domain.metrics import METRICS

OPERATIONS = Path(__file__).resolve().parents[2] / "docs/operations.md"
NAMESPACE = "MciCustomers"
FILTERED_NAMESPACE = "MciCustomers/${Stage}"  # the metric filters' (log lines)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == kind}


def dashboard_body(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's JSON with every ${...} of its !Sub left as its own name (${Stage} stays ${Stage})."""
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body: dict[str, Any] = json.loads(dashboard["DashboardBody"]["Fn::Sub"])
    return body


def charted(body: dict[str, Any]) -> set[tuple[str, str]]:
    """(namespace, metric name) of every metric a widget shows, named directly or in a SEARCH expression."""
    found: set[tuple[str, str]] = set()
    for widget in body["widgets"]:
        for entry in widget["properties"]["metrics"]:
            if isinstance(entry[0], dict):
                expression = entry[0]["expression"]
                namespace = re.search(r"\{([^,}]+)", expression)
                assert namespace, expression
                found |= {(namespace.group(1), n) for n in re.findall(r'MetricName="(\w[\w.]*)"', expression)}
            else:
                found.add((entry[0], entry[1]))
    return found


def documented() -> dict[str, tuple[str, ...]]:
    """The business metrics table of docs/operations.md: metric -> its own dimensions."""
    section = OPERATIONS.read_text(encoding="utf-8").split("## Business metrics", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|([^|]*)\|", section, flags=re.MULTILINE)
    return {name: tuple(re.findall(r"^`(\w+)`", dims.strip())) for name, dims in rows}


def test_docs_list_every_metric_the_code_emits_with_its_dimensions() -> None:
    assert documented() == METRICS


def test_every_business_metric_is_charted_and_nothing_charted_is_unknown(template: dict[str, Any]) -> None:
    shown = charted(dashboard_body(template))
    assert {name for namespace, name in shown if namespace == NAMESPACE} == set(METRICS)
    filtered = {
        f["MetricTransformations"][0]["MetricName"] for f in resources(template, "AWS::Logs::MetricFilter").values()
    }
    assert {name for namespace, name in shown if namespace == FILTERED_NAMESPACE} <= filtered
    assert {namespace for namespace, _ in shown} <= {
        NAMESPACE,
        FILTERED_NAMESPACE,
        "AWS/Lambda",
        "AWS/ApiGateway",
        "AWS/SES",
        "AWS/SQS",
    }


def test_the_dashboard_shows_the_funnel_in_order_with_declines_and_expiries_beside_it(template: dict[str, Any]) -> None:
    widgets = dashboard_body(template)["widgets"]
    funnel = [name for _, name in sorted(charted({"widgets": [widgets[0]]}))]
    assert set(funnel) == {
        "CustomersAdded",
        "CustomersClaimed",
        "ConsentsRequested",
        "ConsentsGranted",
        "ClaimsSubmitted",
        "ClaimsCompleted",
    }
    beside = {name for _, name in charted({"widgets": [widgets[1]]})}
    assert {"ConsentsDeclined", "ClaimsExpired"} <= beside
    all_shown = {name for _, name in charted({"widgets": widgets})}
    for operational in ("Errors", "Duration", "Latency", "5xx", "Reputation.BounceRate", "Reputation.ComplaintRate"):
        assert operational in all_shown
    assert {"IteratorAge", "ApproximateNumberOfMessagesVisible", "SweepRuns", "SweepLagSeconds"} <= all_shown


def test_the_new_alarms_watch_metrics_the_service_emits(template: dict[str, Any]) -> None:
    headings = set(re.findall(r"^### (\w+)$", OPERATIONS.read_text(encoding="utf-8"), flags=re.MULTILINE))
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    business = {"ConsentEmailsFailingAlarm", "ClaimsExpiringInBulkAlarm", "FunnelStalledAlarm"}
    assert business <= set(alarms)
    assert set(alarms) <= headings  # every alarm has its runbook section
    for logical_id, alarm in alarms.items():
        for query in alarm.get("Metrics", []):
            metric = query.get("MetricStat", {}).get("Metric")
            if metric is None or metric["Namespace"] != NAMESPACE:
                continue
            assert metric["MetricName"] in METRICS, logical_id
            names = [d["Name"] for d in metric["Dimensions"]]
            assert names == ["service", "stage", *METRICS[metric["MetricName"]]], logical_id
        if logical_id in business:
            assert f"Runbook: docs/operations.md#{logical_id.lower()}" in alarm["AlarmDescription"]
            assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
