"""The operations dashboard and the business-metric alarms of template.yaml against what the code emits and what
docs/operations.md lists: nothing charted or alarmed on that nobody emits, nothing emitted that no doc lists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from local.cloudformation import load_template
from local.cloudformation import routes as cloudformation_routes
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


# ---------------------------------------------------------------- per-route and per-function lines (SEARCH)
#
# A SEARCH expression is evaluated by CloudWatch against the metrics that exist, so the template alone cannot
# show what a widget draws. These tests evaluate each SEARCH of the dashboard, as CloudWatch documents it
# (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html), against the metrics
# this stack publishes: the schema in braces takes metrics with exactly that namespace and dimension names;
# `Name="value"` matches the whole value exactly; `Name=value` matches a run of the value's tokens (split at
# non-alphanumerics, case changes and digits). Anything else the model refuses rather than guesses.

API_ID = "a1b2c3d4e5"  # what ${HttpApi} resolves to
STAGE = "prod"
_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s*(.*?)',\s*'([^']+)',\s*(\d+)\)")
_TERM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([\w.-]+))')
_ROUTE_METRICS = ("Count", "4xx", "5xx", "Latency", "IntegrationLatency", "DataProcessed")


Metric = tuple[str, str, dict[str, str]]  # namespace, name, dimensions


def resolved_body(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard as CloudFormation renders it for stage prod: ${Stage}, ${HttpApi} and ${!...} resolved."""
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    text = dashboard["DashboardBody"]["Fn::Sub"]
    text = text.replace("${Stage}", STAGE).replace("${HttpApi}", API_ID).replace("${!", "${")
    body: dict[str, Any] = json.loads(text)
    return body


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", text)]


def _matches(term: tuple[str, str, str], metric: Metric) -> bool:
    name, exact, partial = term
    namespace, metric_name, dimensions = metric
    value = {"MetricName": metric_name, "Namespace": namespace}.get(name, dimensions.get(name))
    if value is None:
        return False
    if exact:
        return value == exact.replace('\\"', '"')
    wanted, found = _tokens(partial), _tokens(value)
    return any(found[i : i + len(wanted)] == wanted for i in range(len(found) - len(wanted) + 1))


def search(expression: str, metrics: list[Metric]) -> tuple[str, list[Metric]]:
    """The statistic of one SEARCH expression and the metrics it finds."""
    found = _SEARCH.fullmatch(expression.strip())
    assert found, f"not a SEARCH the model reads: {expression}"
    schema, query, statistic, _period = found.groups()
    namespace, *dimension_names = [part.strip() for part in schema.split(",")]
    terms = _TERM.findall(query)
    assert _TERM.sub("", query).strip() == "", f"only Name=value terms are modelled: {query}"
    return statistic, [
        metric
        for metric in metrics
        if metric[0] == namespace
        and set(metric[2]) == set(dimension_names)
        and all(_matches(term, metric) for term in terms)
    ]


def searches_of(body: dict[str, Any], namespace: str, metric_name: str) -> list[tuple[dict[str, Any], str]]:
    """(widget properties, expression) of every SEARCH on the dashboard for this metric."""
    return [
        (widget["properties"], entry[0]["expression"])
        for widget in body["widgets"]
        for entry in widget["properties"]["metrics"]
        if isinstance(entry[0], dict)
        and "SEARCH(" in entry[0]["expression"]
        and "{" + namespace + "," in entry[0]["expression"]
        and f'MetricName="{metric_name}"' in entry[0]["expression"]
    ]


def published_api_metrics(template: dict[str, Any]) -> list[Metric]:
    """What API Gateway publishes for the stack's HTTP API with detailed metrics on (docs.aws.amazon.com/apigateway/
    latest/developerguide/http-api-metrics.html): each metric per ApiId, per ApiId and Stage, and per route
    (ApiId, Method, Resource, Stage); and the same of another API in the account, which no line may show."""
    metrics: list[Metric] = []
    for api in (API_ID, "otherapi99"):
        for name in _ROUTE_METRICS:
            metrics += [
                ("AWS/ApiGateway", name, {"ApiId": api}),
                ("AWS/ApiGateway", name, {"ApiId": api, "Stage": "$default"}),
            ]
            metrics += [
                ("AWS/ApiGateway", name, {"ApiId": api, "Stage": "$default", "Resource": r.path, "Method": r.method})
                for r in cloudformation_routes(template)
            ]
    return metrics


def published_function_metrics(template: dict[str, Any]) -> list[Metric]:
    """What Lambda publishes for every function of the stack (per function, per alias, per version) and for the
    same functions of the other stage, which no line may show."""
    metrics: list[Metric] = []
    for stage in (STAGE, "dev"):
        for name in function_names(template, stage):
            for metric in ("Errors", "Duration", "Invocations", "Throttles"):
                metrics += [
                    ("AWS/Lambda", metric, {"FunctionName": name}),
                    ("AWS/Lambda", metric, {"FunctionName": name, "Resource": f"{name}:live"}),
                    ("AWS/Lambda", metric, {"FunctionName": name, "ExecutedVersion": "3"}),
                ]
    return metrics


def function_names(template: dict[str, Any], stage: str) -> list[str]:
    return [
        properties["FunctionName"]["Fn::Sub"].replace("${Stage}", stage)
        for properties in resources(template, "AWS::Serverless::Function").values()
    ]


@pytest.mark.parametrize(("metric_name", "statistic"), [("Latency", "p99"), ("5xx", "Sum"), ("4xx", "Sum")])
def test_every_route_of_the_template_has_its_own_line_of_latency_and_errors(
    template: dict[str, Any], metric_name: str, statistic: str
) -> None:
    api = template["Resources"]["HttpApi"]["Properties"]
    assert api["DefaultRouteSettings"]["DetailedMetricsEnabled"] is True  # no per-route metric without it
    published = published_api_metrics(template)
    (found,) = searches_of(resolved_body(template), "AWS/ApiGateway", metric_name)
    widget, expression = found
    stat, lines = search(expression, published)
    assert stat == statistic
    assert all(dimensions["ApiId"] == API_ID for _, _, dimensions in lines)
    shown = sorted((dimensions["Method"], dimensions["Resource"]) for _, _, dimensions in lines)
    assert shown == sorted((r.method, r.path) for r in cloudformation_routes(template))  # one line per route
    assert "route" in widget["title"]


@pytest.mark.parametrize("metric_name", ["Errors", "Duration"])
def test_every_function_of_the_stage_has_its_own_line_of_errors_and_duration(
    template: dict[str, Any], metric_name: str
) -> None:
    ((_, expression),) = searches_of(resolved_body(template), "AWS/Lambda", metric_name)
    _, lines = search(expression, published_function_metrics(template))
    assert sorted(dimensions["FunctionName"] for _, _, dimensions in lines) == sorted(function_names(template, STAGE))


def test_the_search_model_reads_exact_and_partial_terms() -> None:
    metrics: list[Metric] = [
        ("AWS/Lambda", "Errors", {"FunctionName": "mci-customers-prod-reads"}),
        ("AWS/Lambda", "Errors", {"FunctionName": "mci-customers-dev-reads"}),
        ("AWS/Lambda", "Errors", {"FunctionName": "mci-customers-prod-reads", "Resource": "x:live"}),
    ]
    exact = "SEARCH('{AWS/Lambda,FunctionName} MetricName=\"Errors\" FunctionName=\"mci-customers-prod-\"', 'Sum', 300)"
    partial = "SEARCH('{AWS/Lambda,FunctionName} MetricName=\"Errors\" FunctionName=mci-customers-prod', 'Sum', 300)"
    assert search(exact, metrics)[1] == []  # a quoted value is the whole value: no function is named that
    assert search(partial, metrics)[1] == [metrics[0]]
    with pytest.raises(AssertionError):
        search("SEARCH('{AWS/Lambda,FunctionName} Errors OR Throttles', 'Sum', 300)", metrics)


def test_the_documented_cost_of_detailed_metrics_counts_the_routes_of_the_template(template: dict[str, Any]) -> None:
    routes = len(cloudformation_routes(template))
    metrics = routes * len(_ROUTE_METRICS)
    text = " ".join(OPERATIONS.read_text(encoding="utf-8").split())
    assert f"{routes} routes x {len(_ROUTE_METRICS)} metrics = **{metrics} metrics per stage**" in text
    assert f"**${metrics * 0.30:.2f} a month per stage**" in text
