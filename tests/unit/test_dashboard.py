"""The operations dashboard and the business-metric alarms of template.yaml against what the code emits and what
docs/operations.md lists: nothing charted or alarmed on that nobody emits, nothing emitted that no doc lists."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.session import HOURLY_PROFILE, TRAFFIC
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
    sweep = next(w for w in widgets if w["properties"]["title"].startswith("Sweep"))
    assert {"SweepFailedClaims", "SweepDeferredClaims"} <= {name for _, name in charted({"widgets": [sweep]})}


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


# ---------------------------------------------------------------- the business alarms on a day of the programme
#
# Each business alarm's metric math is evaluated, datapoint by datapoint, on the programme's traffic: 5,500 partner
# sessions a day, one add (and its consent request) each (docs/scaling.md: 2 million claims a year), spread over
# the UTC day by the session simulation's hourly profile (bench.session.HOURLY_PROFILE: 8 % of the day in the
# busiest hour, 0.8 % at night). The arithmetic is docs/operations.md's, runbook by runbook.

PROGRAMME = next(t for t in TRAFFIC if t.name == "programme")
Hour = dict[str, float | None]  # "MetricName" or "MetricName/own dimension value" -> the hour's sum (None: no data)


def programme_hours(per_session: dict[str, float], sessions_per_day: int = PROGRAMME.sessions_per_day) -> list[Hour]:
    """24 UTC hours of the programme: each metric `per_session` times the hour's sessions."""
    total = sum(HOURLY_PROFILE)
    return [
        {key: share * sessions_per_day * weight / total for key, share in per_session.items()}
        for weight in HOURLY_PROFILE
    ]


class _MetricMath:
    """The part of CloudWatch metric math the alarms use (numbers, ids, + - * /, comparisons, AND, OR, IF, FILL),
    on one datapoint; None is a missing value, and what is computed from one is missing unless FILL replaces it."""

    _TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|(\w+)|(>=|<=|==|!=|[-+*/(),<>]))")

    def __init__(self, expression: str) -> None:
        self.tokens: list[str] = [(number or name or op) for number, name, op in self._TOKEN.findall(expression)]
        assert "".join(self.tokens) == re.sub(r"\s+", "", expression), expression
        self.at = 0

    def evaluate(self, values: dict[str, float | None]) -> float | None:
        self.values, self.at = values, 0
        result = self._or()
        assert self.at == len(self.tokens), self.tokens[self.at :]
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self.tokens[self.at]
        assert expected is None or token == expected, (token, expected)
        self.at += 1
        return token

    def _binary(self, operand: Any, operators: dict[str, Any]) -> float | None:
        left = operand()
        while self._peek() in operators:
            apply = operators[self._take()]
            right = operand()
            left = None if left is None or right is None else apply(left, right)
        return left  # type: ignore[no-any-return]

    def _or(self) -> float | None:
        return self._binary(self._and, {"OR": lambda a, b: float(bool(a) or bool(b))})

    def _and(self) -> float | None:
        return self._binary(self._comparison, {"AND": lambda a, b: float(bool(a) and bool(b))})

    def _comparison(self) -> float | None:
        comparisons = {
            ">=": lambda a, b: float(a >= b),
            "<=": lambda a, b: float(a <= b),
            ">": lambda a, b: float(a > b),
            "<": lambda a, b: float(a < b),
            "==": lambda a, b: float(a == b),
            "!=": lambda a, b: float(a != b),
        }
        return self._binary(self._sum, comparisons)

    def _sum(self) -> float | None:
        return self._binary(self._product, {"+": lambda a, b: a + b, "-": lambda a, b: a - b})

    def _product(self) -> float | None:
        return self._binary(self._atom, {"*": lambda a, b: a * b, "/": lambda a, b: a / b if b else None})

    def _arguments(self) -> list[int]:
        """Skip a call's arguments, returning where each starts (IF evaluates only the branch it takes)."""
        starts, depth = [self.at], 0
        while depth or self._peek() != ")":
            token = self._take()
            depth += {"(": 1, ")": -1}.get(token, 0)
            if token == "," and depth == 0:
                starts.append(self.at)
        return starts

    def _argument(self, start: int) -> float | None:
        saved, self.at = self.at, start
        value = self._or()
        self.at = saved
        return value

    def _atom(self) -> float | None:
        token = self._take()
        if token == "(":
            value = self._or()
            self._take(")")
            return value
        if token == "-":
            value = self._atom()
            return None if value is None else -value
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            return float(token)
        if self._peek() == "(" and token in ("IF", "FILL"):
            self._take("(")
            starts = self._arguments()
            self._take(")")
            first = self._argument(starts[0])
            if token == "FILL":
                return self._argument(starts[1]) if first is None else first
            if first is None:
                return None
            return self._argument(starts[1] if first else starts[2])
        assert token in self.values, f"unknown id {token}"
        return self.values[token]


def _expression(query: dict[str, Any], parameters: dict[str, Any]) -> str:
    expression = query["Expression"]
    if isinstance(expression, dict):  # !Sub with parameters
        text = expression["Fn::Sub"]
        for name, parameter in parameters.items():
            if "Default" in parameter:
                text = text.replace("${" + name + "}", str(parameter["Default"]))
        assert "${" not in text, text
        return str(text)
    return str(expression)


def _names(query: dict[str, Any], template: dict[str, Any]) -> set[str]:
    words = set(re.findall(r"[A-Za-z_]\w*", _expression(query, template["Parameters"])))
    return words - {"IF", "FILL", "AND", "OR"}


def _metric_key(stat: dict[str, Any]) -> str:
    metric = stat["Metric"]
    own = [d["Value"] for d in metric["Dimensions"] if d["Name"] not in ("service", "stage")]
    return "/".join([metric["MetricName"], *own])


def alarm_datapoints(template: dict[str, Any], logical_id: str, hours: list[Hour]) -> list[float | None]:
    """The alarm's metric math over consecutive UTC hours, one value per period of the alarm (a period shorter
    than an hour sees the hour's sums spread evenly; a longer one their sums, known at its last hour only)."""
    alarm = resources(template, "AWS::CloudWatch::Alarm")[logical_id]
    queries = alarm["Metrics"]
    (period,) = {q["MetricStat"]["Period"] for q in queries if "MetricStat" in q}
    per_hour = 3600 // period if period <= 3600 else 1
    hours_per_point = period // 3600 if period > 3600 else 1
    points: list[Hour] = []
    for start in range(0, len(hours), hours_per_point):
        chunk = hours[start : start + hours_per_point]
        keys = {key for hour in chunk for key in hour}
        summed: Hour = {}
        for key in keys:
            known = [hour[key] for hour in chunk if hour.get(key) is not None]
            summed[key] = sum(known) / per_hour if known else None  # type: ignore[arg-type]
        points += [{}] * (len(chunk) - 1) + [summed] * per_hour  # {}: no datapoint yet
    returned = [q for q in queries if q.get("ReturnData", True)]
    assert len(returned) == 1, logical_id
    values: list[float | None] = []
    for point in points:
        if not point:
            values.append(None)
            continue
        env: dict[str, float | None] = {
            q["Id"]: point.get(_metric_key(q["MetricStat"])) for q in queries if "MetricStat" in q
        }
        pending = [q for q in queries if "Expression" in q]
        while pending:  # an expression once every id it names is known
            ready = [q for q in pending if _names(q, template) <= set(env)]
            assert ready, f"{logical_id}: a cycle or an unknown id"
            for query in ready:
                env[query["Id"]] = _MetricMath(_expression(query, template["Parameters"])).evaluate(env)
                pending.remove(query)
        values.append(env[returned[0]["Id"]])
    return values


def first_alarm(template: dict[str, Any], logical_id: str, hours: list[Hour]) -> int | None:
    """The index of the first datapoint at which the alarm is in ALARM (None: it never is)."""
    alarm = resources(template, "AWS::CloudWatch::Alarm")[logical_id]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    window, needed = alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]
    breaching = [v is not None and v >= alarm["Threshold"] for v in alarm_datapoints(template, logical_id, hours)]
    for end in range(window, len(breaching) + 1):
        if sum(breaching[end - window : end]) >= needed:
            return end - 1
    return None


def _with(hours: list[Hour], at: range, **changes: float) -> list[Hour]:
    return [{**hour, **changes} if index in at else hour for index, hour in enumerate(hours)]


CONSENT_EMAILS = "ConsentEmailsSent"
REJECTED = "ConsentEmailsUndelivered/email_rejected"


def test_consent_emails_failing_fires_at_five_percent_of_an_hours_emails_not_at_the_programmes_normal_noise(
    template: dict[str, Any],
) -> None:
    alarm = "ConsentEmailsFailingAlarm"
    # Normal: one consent email per session; up to 2 % of an hour's addresses refused (a partner's batch of typos).
    normal = programme_hours({CONSENT_EMAILS: 0.98, REJECTED: 0.02})
    assert first_alarm(template, alarm, normal) is None
    busiest = HOURLY_PROFILE.index(max(HOURLY_PROFILE))
    assert first_alarm(template, alarm, _with(normal, range(busiest, busiest + 1), **{REJECTED: 25.0})) == busiest
    night = HOURLY_PROFILE.index(min(HOURLY_PROFILE))
    assert first_alarm(template, alarm, _with(normal, range(night, night + 1), **{REJECTED: 5.0})) == night
    assert first_alarm(template, alarm, _with(normal, range(night, night + 1), **{REJECTED: 4.0})) is None
    quiet: list[Hour] = [{CONSENT_EMAILS: None, REJECTED: None} for _ in HOURLY_PROFILE]
    assert first_alarm(template, alarm, quiet) is None  # no email, no data: nothing failed


EXPIRED = "ClaimsExpired/consent_requested"
ADDED = "CustomersAdded/fixed"


def test_claims_expiring_in_bulk_fires_on_a_burst_at_any_hour_never_on_a_normal_day(template: dict[str, Any]) -> None:
    alarm = "ClaimsExpiringInBulkAlarm"
    # Deadlines are creation + a window of days (rule 12, 17): expiries keep the hourly shape of the adds they
    # come from. Normal: up to half the claims expire.
    normal = programme_hours({ADDED: 1.0, EXPIRED: 0.5})
    assert first_alarm(template, alarm, normal) is None
    weekend = programme_hours({ADDED: 1 / 3, EXPIRED: 0.5})  # adds fall to a third, expiries of weekday adds do not
    assert first_alarm(template, alarm, weekend) is None
    night = HOURLY_PROFILE.index(min(HOURLY_PROFILE))
    burst = _with(normal, range(night, night + 1), **{EXPIRED: normal[night][EXPIRED] + 120})  # type: ignore[operator]
    assert first_alarm(template, alarm, burst) is not None
    busiest = HOURLY_PROFILE.index(max(HOURLY_PROFILE))
    big = _with(normal, range(busiest, busiest + 1), **{EXPIRED: normal[busiest][EXPIRED] + 1000})  # type: ignore[operator]
    assert first_alarm(template, alarm, big) is not None
    assert first_alarm(template, alarm, [{ADDED: None, EXPIRED: None} for _ in HOURLY_PROFILE]) is None


REQUESTED, GRANTED = "ConsentsRequested", "ConsentsGranted"


def test_a_stalled_funnel_pages_within_the_working_morning_never_at_night(template: dict[str, Any]) -> None:
    alarm = "FunnelStalledAlarm"
    normal = programme_hours({REQUESTED: 1.0, GRANTED: 0.2})  # a fifth of the requests answered, same shape
    assert first_alarm(template, alarm, normal) is None
    night = [h for h, weight in enumerate(HOURLY_PROFILE) if weight == min(HOURLY_PROFILE)]
    assert first_alarm(template, alarm, _with(normal, range(0, 5), **{GRANTED: 0.0})) is None  # answers stop at night
    stalled = first_alarm(template, alarm, _with(normal, range(24), **{GRANTED: 0.0}))
    assert stalled is not None
    assert stalled not in night
    assert stalled <= 8  # by 08 UTC when it stalled at midnight
    partial = [{**hour, GRANTED: 0.005 * hour[REQUESTED]} for hour in normal]  # type: ignore[operator]
    assert first_alarm(template, alarm, partial) is not None  # answers fall to 1 in 200 requests
    pilot = programme_hours(
        {REQUESTED: 1.0, GRANTED: 0.0}, sessions_per_day=300
    )  # quiet stage: the floor is a parameter
    assert first_alarm(template, alarm, pilot) is None


def test_the_metric_math_model_reads_missing_data_and_if_as_cloudwatch_does() -> None:
    rate = _MetricMath("IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)")
    assert rate.evaluate({"requests": 100.0, "errors": 1.0}) == 1.0
    assert rate.evaluate({"requests": 100.0, "errors": None}) == 0.0  # FILL
    assert rate.evaluate({"requests": 0.0, "errors": None}) == 0.0  # the branch not taken is not computed
    assert rate.evaluate({"requests": None, "errors": 3.0}) is None  # no requests, no datapoint
    assert _MetricMath("a > 1 AND b < 2 OR -c == 4").evaluate({"a": 2.0, "b": 5.0, "c": -4.0}) == 1.0


def test_every_alarm_stays_within_cloudwatchs_limits_on_metric_math(template: dict[str, Any]) -> None:
    """PutMetricAlarm takes at most 10 metrics and 10 expressions, exactly one of them returned
    (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html)."""
    for logical_id, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        queries = alarm.get("Metrics", [])
        assert len([q for q in queries if "MetricStat" in q]) <= 10, logical_id
        assert len([q for q in queries if "Expression" in q]) <= 10, logical_id
        if queries:
            assert len([q for q in queries if q.get("ReturnData", True)]) == 1, logical_id


def test_programme_figures_of_the_business_alarms(template: dict[str, Any]) -> None:
    """The figures docs/operations.md quotes for the three alarms, from the same model."""
    requests = programme_hours({REQUESTED: 1.0})
    assert round(min(h[REQUESTED] for h in requests)) == 44  # type: ignore[type-var, arg-type]
    assert round(max(h[REQUESTED] for h in requests)) == 440  # type: ignore[type-var, arg-type]
    stalled = programme_hours({REQUESTED: 1.0, GRANTED: 0.0})
    assert first_alarm(template, "FunnelStalledAlarm", stalled) == 7  # a stall since midnight pages at 07 UTC


def test_every_metric_read_from_log_lines_is_documented_and_alarms_name_only_those(template: dict[str, Any]) -> None:
    """The metric filters' metrics (namespace MciCustomers/<stage>) are emitted too: each is named in
    docs/operations.md, and an alarm on that namespace names one of them."""
    filtered = {
        f["MetricTransformations"][0]["MetricName"] for f in resources(template, "AWS::Logs::MetricFilter").values()
    }
    text = OPERATIONS.read_text(encoding="utf-8")
    assert filtered
    assert all(f"`{name}`" in text for name in filtered), filtered
    checked = 0
    for logical_id, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        metrics = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q]
        metrics += (
            [{"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"]}] if "MetricName" in alarm else []
        )
        for metric in metrics:
            if metric["Namespace"] == {"Fn::Sub": FILTERED_NAMESPACE}:
                assert metric["MetricName"] in filtered, logical_id
                checked += 1
    assert checked >= 4  # the sweep's and the publisher's alarms


def test_lasting_deferral_has_an_alarm_whose_runbook_tells_the_rate_from_the_daily_quota(
    template: dict[str, Any],
) -> None:
    """A spent SES daily quota throttles like the rate: the sweep defers in every run, with no failure. The alarm on
    SweepDeferredClaims exists, and its runbook says how to tell the two apart (`aws sesv2 get-account`)."""
    on_deferred = [
        logical_id
        for logical_id, alarm in resources(template, "AWS::CloudWatch::Alarm").items()
        if alarm.get("MetricName") == "SweepDeferredClaims"
    ]
    assert on_deferred == ["ExpireClaimsDeferredClaimsAlarm"]
    text = OPERATIONS.read_text(encoding="utf-8")
    runbook = text.split("\n### ExpireClaimsDeferredClaimsAlarm\n", 1)[1].split("\n### ", 1)[0]
    for needed in ("aws sesv2 get-account", "Max24HourSend", "SentLast24Hours", "MaxSendRate", "SesMaxSendRate"):
        assert needed in runbook, needed


# What AWS publishes, by namespace: metric names and the dimension sets each comes with, as AWS documents them
# (API Gateway HTTP APIs: apigateway/latest/developerguide/http-api-metrics.html; Lambda: lambda/latest/dg/
# monitoring-metrics-types.html; SES: ses/latest/dg/reputationdashboard-cloudwatch-alarm.html and event publishing
# reputation metrics; SQS: AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html).
AWS_METRICS: dict[str, tuple[set[str], list[set[str]]]] = {
    "AWS/ApiGateway": (
        set(_ROUTE_METRICS),
        [{"ApiId"}, {"ApiId", "Stage"}, {"ApiId", "Method", "Resource", "Stage"}],
    ),
    "AWS/Lambda": ({"Errors", "Duration", "Invocations", "Throttles", "IteratorAge"}, [{"FunctionName"}]),
    "AWS/SES": ({"Reputation.BounceRate", "Reputation.ComplaintRate"}, [set(), {"ses:configuration-set"}]),
    "AWS/SQS": ({"ApproximateNumberOfMessagesVisible"}, [{"QueueName"}]),
}


def aws_metrics_named(template: dict[str, Any]) -> list[tuple[str, str, set[str], str]]:
    """(namespace, metric, dimension names, where) of every AWS metric the alarms and the dashboard's own lines
    name (SEARCH lines are evaluated by the tests above)."""
    named: list[tuple[str, str, set[str], str]] = []
    for logical_id, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        metrics = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q]
        metrics += [alarm] if "MetricName" in alarm else []
        named += [
            (m["Namespace"], m["MetricName"], {d["Name"] for d in m.get("Dimensions", [])}, logical_id)
            for m in metrics
            if isinstance(m["Namespace"], str) and m["Namespace"].startswith("AWS/")
        ]
    for widget in dashboard_body(template)["widgets"]:
        for entry in widget["properties"]["metrics"]:
            if isinstance(entry[0], str) and entry[0].startswith("AWS/"):
                pairs = [e for e in entry[2:] if isinstance(e, str)]
                named.append((entry[0], entry[1], set(pairs[::2]), widget["properties"]["title"]))
    return named


def test_every_aws_metric_an_alarm_or_a_widget_names_is_one_aws_publishes_with_its_dimensions(
    template: dict[str, Any],
) -> None:
    named = aws_metrics_named(template)
    assert len(named) >= 20
    for namespace, metric, dimensions, where in named:
        names, dimension_sets = AWS_METRICS[namespace]
        assert metric in names, (where, namespace, metric)
        assert dimensions in dimension_sets, (where, namespace, metric, dimensions)


def test_a_rest_api_metric_name_on_an_http_api_is_found(template: dict[str, Any]) -> None:
    """Not vacuous: the name REST APIs use (5XXError) is not what an HTTP API publishes."""
    alarm = copy.deepcopy(template)
    alarm["Resources"]["HttpApi5xxRateAlarm"]["Properties"]["Metrics"][1]["MetricStat"]["Metric"]["MetricName"] = (
        "5XXError"
    )
    with pytest.raises(AssertionError):
        test_every_aws_metric_an_alarm_or_a_widget_names_is_one_aws_publishes_with_its_dimensions(alarm)
