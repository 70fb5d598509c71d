"""Business metrics on the local stack (SPEC §6, issue 15 item 5): what production would chart, from the same lines.

    GET /_local/metrics         the funnel and every counter, as a page (JSON with ``Accept: application/json``)
    GET /_local/metrics.json    {funnel, beside_the_funnel, counters, lines, rejected_lines}

On AWS, CloudWatch turns the embedded metric format (EMF) lines a function prints into metrics: a JSON object
whose ``_aws.CloudWatchMetrics`` directives name the namespace, the dimension sets and the metrics, their values
being members of the same object (Powertools Metrics prints one at the end of an invocation). The local stack
hands every invocation's printed output to ``MetricsBoard.read`` (``ApiStack.output_listeners``), which does what
CloudWatch does with any such line, whatever the metric: one series per metric and dimension set, values
summed. Nothing here knows a metric name but the funnel's: ``FUNNEL`` and ``BESIDE_THE_FUNNEL`` below, the names
docs/operations.md lists (docs/local-stack.md says which). A line that claims to be EMF but is not valid is
counted in ``rejected_lines`` rather than guessed at.
"""

from __future__ import annotations

import html
import json
import math
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.api_stack import ApiStack
from local.pages import page
from local.server import LocalRequest, LocalResponse, local_route

PAGE_PATH = "/_local/metrics"
JSON_PATH = "/_local/metrics.json"

# The claim funnel of issue 15 (added -> consent requested -> granted -> submitted -> completed): each step the
# sum of these metrics (a claim is either added or claimed, so both start it).
FUNNEL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Added", ("CustomersAdded", "CustomersClaimed")),
    ("Consent requested", ("ConsentsRequested",)),
    ("Consent granted", ("ConsentsGranted",)),
    ("Submitted", ("ClaimsSubmitted",)),
    ("Completed", ("ClaimsCompleted",)),
)
# Where claims leave the funnel, shown beside it.
BESIDE_THE_FUNNEL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Consent declined", ("ConsentsDeclined",)),
    ("Expired", ("ClaimsExpired",)),
    ("Rejected", ("ClaimsRejected",)),
    ("Cancelled", ("ClaimsCancelled",)),
)


# ---------------------------------------------------------------- EMF


class NotEmf(ValueError):
    """A JSON line with an ``_aws`` member that is not a valid EMF record."""


@dataclass(frozen=True)
class Point:
    """One metric of one EMF record, in one of its dimension sets."""

    namespace: str
    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class EmfRecord:
    timestamp_ms: int
    points: tuple[Point, ...]


def parse_emf(line: str) -> EmfRecord | None:
    """The EMF record of a printed line; None for a line that is no EMF (a log line); ``NotEmf`` when it
    claims to be (an ``_aws`` member) but breaks the format."""
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or "_aws" not in document:
        return None
    metadata = document["_aws"]
    if not isinstance(metadata, dict):
        raise NotEmf("_aws is not an object")
    timestamp = metadata.get("Timestamp")
    directives = metadata.get("CloudWatchMetrics")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not isinstance(directives, list):
        raise NotEmf("_aws needs a Timestamp (ms) and a CloudWatchMetrics list")
    points: list[Point] = []
    for directive in directives:
        points.extend(_points(document, directive))
    return EmfRecord(timestamp, tuple(points))


def _points(document: Mapping[str, Any], directive: Any) -> list[Point]:
    if not isinstance(directive, dict):
        raise NotEmf("a CloudWatchMetrics directive is not an object")
    namespace, dimension_sets, metrics = (
        directive.get("Namespace"),
        directive.get("Dimensions"),
        directive.get("Metrics"),
    )
    if not isinstance(namespace, str) or not namespace:
        raise NotEmf("a directive needs a Namespace")
    if not isinstance(dimension_sets, list) or not isinstance(metrics, list):
        raise NotEmf(f"{namespace}: Dimensions and Metrics must be lists")
    keyed: list[tuple[tuple[str, str], ...]] = []
    for names in dimension_sets or [[]]:
        if not isinstance(names, list) or not all(
            isinstance(n, str) and isinstance(document.get(n), str) for n in names
        ):
            raise NotEmf(f"{namespace}: every dimension must name a string member")
        keyed.append(tuple((n, str(document[n])) for n in names))
    found: list[Point] = []
    for metric in metrics:
        name = metric.get("Name") if isinstance(metric, dict) else None
        if not isinstance(name, str) or not name:
            raise NotEmf(f"{namespace}: a metric needs a Name")
        values = _values(document.get(name))
        if values is None:
            raise NotEmf(f"{namespace}: {name} has no numeric member")
        unit = str(metric.get("Unit") or "None")
        found.extend(Point(namespace, name, unit, dimensions, values) for dimensions in keyed)
    return found


def _values(member: Any) -> tuple[float, ...] | None:
    """A metric member's values: a number, or a list of them (several values of one metric in one record)."""
    items = member if isinstance(member, list) else [member]
    if not items or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in items):
        return None
    return tuple(float(v) for v in items)


# ---------------------------------------------------------------- the board


@dataclass
class Series:
    """A metric in one dimension set, as CloudWatch would chart it: its values summed."""

    namespace: str
    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]
    value: float = 0.0
    data_points: int = 0
    functions: set[str] = field(default_factory=set)
    last_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "unit": self.unit,
            "dimensions": dict(self.dimensions),
            "value": _number(self.value),
            "data_points": self.data_points,
            "functions": sorted(self.functions),
            "last_at": self.last_at.isoformat().replace("+00:00", "Z") if self.last_at else None,
        }


class MetricsBoard:
    """Every EMF metric the stack's functions printed since it started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], Series] = {}
        # Each record's value counted once per metric name, whatever its dimension sets: the funnel's counts.
        self._totals: dict[str, float] = {}
        self.lines = 0
        self.rejected_lines = 0

    def read(self, function: str, printed: str) -> None:
        """Take the EMF records out of what ``function`` printed in one invocation."""
        for line in printed.splitlines():
            try:
                record = parse_emf(line)
            except NotEmf:
                with self._lock:
                    self.rejected_lines += 1
                continue
            if record is not None:
                self._add(function, record)

    def _add(self, function: str, record: EmfRecord) -> None:
        at = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        with self._lock:
            self.lines += 1
            counted: set[str] = set()
            for point in record.points:
                key = (point.namespace, point.name, point.unit, point.dimensions)
                series = self._series.setdefault(key, Series(*key))
                series.value += sum(point.values)
                series.data_points += len(point.values)
                series.functions.add(function)
                series.last_at = at
                if point.name not in counted:
                    counted.add(point.name)
                    self._totals[point.name] = self._totals.get(point.name, 0.0) + sum(point.values)

    def total(self, *names: str) -> float:
        with self._lock:
            return sum(self._totals.get(name, 0.0) for name in names)

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            series = sorted(self._series.values(), key=lambda s: (s.namespace, s.name, s.dimensions))
            counters = [s.as_json() for s in series]
            lines, rejected = self.lines, self.rejected_lines
        return {
            "funnel": [self._step(title, names) for title, names in FUNNEL],
            "beside_the_funnel": [self._step(title, names) for title, names in BESIDE_THE_FUNNEL],
            "counters": counters,
            "lines": lines,
            "rejected_lines": rejected,
        }

    def _step(self, title: str, names: tuple[str, ...]) -> dict[str, Any]:
        return {"step": title, "metrics": list(names), "value": _number(self.total(*names))}


def _number(value: float) -> float | int:
    return int(value) if value.is_integer() else value


_BOARDS: weakref.WeakKeyDictionary[ApiStack, MetricsBoard] = weakref.WeakKeyDictionary()
_BOARDS_LOCK = threading.Lock()


def attach(stack: ApiStack) -> MetricsBoard:
    """The stack's board, reading every invocation's output from now on (``LocalStack`` calls this as it starts)."""
    with _BOARDS_LOCK:
        board = _BOARDS.get(stack)
        if board is None:
            board = _BOARDS[stack] = MetricsBoard()
            stack.output_listeners.append(board.read)
        return board


# ---------------------------------------------------------------- pages


def _steps_table(caption: str, steps: list[dict[str, Any]], first: float | None) -> str:
    share = f'<th scope="col">Of {html.escape(FUNNEL[0][0].lower())}</th>' if first is not None else ""
    rows = []
    for step in steps:
        names = ", ".join(f"<code>{html.escape(n)}</code>" for n in step["metrics"])
        cell = ""
        if first is not None:
            cell = f"<td>{100 * step['value'] / first:.0f} %</td>" if first else "<td>-</td>"
        rows.append(
            f'<tr><th scope="row">{html.escape(step["step"])}</th><td>{names}</td><td>{step["value"]:g}</td>{cell}</tr>'
        )
    return (
        f'<table><caption>{html.escape(caption)}</caption><thead><tr><th scope="col">Step</th>'
        f'<th scope="col">Metrics (summed)</th><th scope="col">Count</th>{share}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _metrics_page(board: dict[str, Any]) -> LocalResponse:
    funnel = board["funnel"]
    parts = [
        "<h1>Local metrics</h1>",
        f'<p class="meta">{board["lines"]} EMF line{"" if board["lines"] == 1 else "s"} read from what the functions '
        f"printed since the stack started ({board['rejected_lines']} not valid EMF). The same lines CloudWatch "
        f'reads on AWS. Reload to see new ones; <a href="{JSON_PATH}">JSON</a>.</p>',
        _steps_table("The claim funnel", funnel, float(funnel[0]["value"])),
        _steps_table("Beside the funnel", board["beside_the_funnel"], None),
    ]
    if board["counters"]:
        rows = []
        for counter in board["counters"]:
            dimensions = ", ".join(f"{k}={v}" for k, v in counter["dimensions"].items())
            rows.append(
                f'<tr><td class="code">{html.escape(counter["namespace"])}</td>'
                f'<td class="code">{html.escape(counter["name"])}</td>'
                f'<td class="code">{html.escape(dimensions)}</td><td>{html.escape(counter["unit"])}</td>'
                f"<td>{counter['value']:g}</td><td>{counter['data_points']}</td>"
                f'<td class="code">{html.escape(", ".join(counter["functions"]))}</td></tr>'
            )
        parts.append(
            '<table><caption>Every counter, by metric and dimension set</caption><thead><tr><th scope="col">'
            'Namespace</th><th scope="col">Metric</th><th scope="col">Dimensions</th><th scope="col">Unit</th>'
            '<th scope="col">Sum</th><th scope="col">Data points</th><th scope="col">Functions</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    else:
        parts.append("<p>No metric emitted yet.</p>")
    return page(200, "Local metrics", "\n".join(parts))


def _wants_json(request: LocalRequest) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


@local_route("GET", PAGE_PATH)
def metrics_page(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The business metrics the functions emitted (EMF), funnel first, as a page; JSON with Accept: application/json."""
    board = attach(stack).as_json()
    if _wants_json(request):
        return LocalResponse.json(200, board, [("Cache-Control", "no-store")])
    return _metrics_page(board)


@local_route("GET", JSON_PATH)
def metrics_json(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """The business metrics as {funnel, beside_the_funnel, counters, lines, rejected_lines}."""
    return LocalResponse.json(200, attach(stack).as_json(), [("Cache-Control", "no-store")])
