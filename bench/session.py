"""Session: the cold starts a partner meets, on the deployed functions and on other layouts for contrast.

A partner's session is the web app's calls, scripted (``SESSION``): open the engagements, an
engagement's Customers page, the add-customer wizard (known customers, locations, eligibility preview,
payment quote, add), back to the page, send consent, the claim's details. Each call is resolved to the
function that serves it: today's from template.yaml's HttpApi events (``local.cloudformation.routes``,
generated from functions/table.py), the contrasts (one function per route as before issue 16, a
monolith) from ``ONE_PER_ROUTE`` below. The distinct functions of a session are the cold starts a
partner meets when the service has been idle.

Then a day of traffic is simulated (``simulate``, a seeded discrete-event model, assumptions in
``Traffic``): sessions start at random through the day following ``HOURLY_PROFILE``; each call holds one
execution environment of its function for its service time; a call finds a warm environment if one of
its function is free and has been idle less than the reclaim time, otherwise it waits for a cold start
(a new environment). Reported per layout: the share of partner requests that waited for a cold start,
and the p50/p95 of what a session waited in all.
"""

from __future__ import annotations

import heapq
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.common import percentile

# The documented constant (docs/performance.md, cold start table of 27 November 2026): CPU time of a
# function's cold start, about 2.1 x 265 ms of boto3 + one DynamoDB client. Used when the same run has
# no cold_start section; otherwise each function's own measured CPU time is used.
DOCUMENTED_COLD_START_MS = 550.0
COLD_START_SOURCE_DOCUMENTED = "constant from docs/performance.md (550 ms of CPU per function)"
TARGET_COLD_STARTS = 3  # issue 16: at most 3 cold starts in the session


@dataclass(frozen=True)
class Step:
    """One call of the session and how long the partner looks at its answer before the next one."""

    method: str
    path: str
    what: str
    think_seconds: float  # mean of an exponential distribution; the time until the next call


SESSION: tuple[Step, ...] = (
    Step("GET", "/engagements", "open the engagements", 15),
    Step("GET", "/engagements/e-azure-migrate/customers", "the engagement's Customers page (eligible tab)", 30),
    Step("GET", "/known-customers", "Add customer: new or known customer", 10),
    Step("GET", "/locations", "wizard: choose the location", 20),
    Step("POST", "/eligibility-checks", "wizard: eligibility preview", 40),
    Step("POST", "/payment-quotes", "wizard: payment quote", 60),
    Step("POST", "/customers", "wizard: add", 5),
    Step("GET", "/engagements/e-azure-migrate/customers", "back to the Customers page", 20),
    Step("POST", "/claims/c-1/consent-requests", "send customer consent email", 15),
    Step("GET", "/claims/c-1", "the claim's details", 0),
)

# ---------------------------------------------------------------- layouts

READS = "ReadsFunction"  # functions/table.py's grouped read and preview function (issue 16, item 2)
MONOLITH = "MonolithFunction"

# Before issue 16 (commit 7ad7b08): one function per route, the consent page's three routes in one. Kept for
# contrast; the deployed layout ("today") is read from template.yaml.
ONE_PER_ROUTE: Mapping[tuple[str, str], str] = {
    ("GET", "/engagements"): "ListEngagementsFunction",
    ("GET", "/locations"): "ListLocationsFunction",
    ("POST", "/eligibility-checks"): "CheckEligibilityFunction",
    ("POST", "/payment-quotes"): "QuotePaymentFunction",
    ("GET", "/known-customers"): "ListKnownCustomersFunction",
    ("GET", "/engagements/{engagement_id}/customers"): "CustomersPageFunction",
    ("GET", "/claims/{claim_id}"): "GetClaimFunction",
    ("GET", "/referrals/{referral_id}"): "GetReferralFunction",
    ("GET", "/attention-items"): "AttentionItemsFunction",
    ("POST", "/customers"): "AddCustomerFunction",
    ("POST", "/known-customers/{customer_id}/claims"): "ClaimCustomerFunction",
    ("POST", "/claims/{claim_id}/consent-requests"): "RequestConsentFunction",
    ("GET", "/consent/{token}"): "ConsentPageFunction",
    ("HEAD", "/consent/{token}"): "ConsentPageFunction",
    ("POST", "/consent/{token}"): "ConsentPageFunction",
    ("POST", "/claims/{claim_id}/submission"): "SubmitClaimFunction",
    ("POST", "/claims/{claim_id}/cancellation"): "CancelClaimFunction",
    ("POST", "/ops/reference-data"): "LoadReferenceDataFunction",
    ("POST", "/ops/claims/{claim_id}/review"): "ReviewClaimFunction",
}


def today() -> dict[tuple[str, str], str]:
    """Route -> function as template.yaml deploys it (functions/table.py: the reads and previews grouped)."""
    from local.cloudformation import routes

    return {(route.method, route.path): route.function for route in routes()}


def layouts() -> dict[str, dict[tuple[str, str], str]]:
    current = today()
    return {
        "one per route": dict(ONE_PER_ROUTE),
        "today": current,
        "monolith": dict.fromkeys(current, MONOLITH),
    }


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")


def resolve(layout: Mapping[tuple[str, str], str], method: str, path: str) -> str:
    """The function of ``layout`` that serves ``method path`` (a concrete path); KeyError when none does."""
    for (route_method, route_path), function in layout.items():
        if route_method == method and _pattern(route_path).match(path):
            return function
    raise KeyError(f"no route for {method} {path}")


def session_functions(layout: Mapping[tuple[str, str], str], steps: Sequence[Step] = SESSION) -> list[str]:
    """The functions of a session's calls, in order (repeats included)."""
    return [resolve(layout, step.method, step.path) for step in steps]


def cold_starts_when_idle(layout: Mapping[tuple[str, str], str], steps: Sequence[Step] = SESSION) -> int:
    """A session alone on an idle service meets one cold start per distinct function (calls are sequential)."""
    return len(set(session_functions(layout, steps)))


# ---------------------------------------------------------------- the day


# Share of a day's sessions starting in each UTC hour: a worldwide programme, busiest in the European
# and American working days (EMEA 07-16 UTC, Americas 13-23 UTC), quiet at night in both.
HOURLY_PROFILE: tuple[float, ...] = (
    1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 8, 9, 10, 10, 9, 8, 7, 6, 5, 4, 2, 1,
)  # fmt: skip


@dataclass(frozen=True)
class Traffic:
    """The assumptions of one simulated day (documented in docs/performance.md)."""

    name: str
    sessions_per_day: int
    reclaim_minutes: float = 7.0  # Lambda reclaims an idle environment after "a few minutes": 5 to 15 seen
    warm_ms: float = 60.0  # service time of a warm call on AWS (3 round trips of 5-20 ms plus our code)
    seed: int = 16


TRAFFIC: tuple[Traffic, ...] = (
    # A region or a pilot: a few hundred partner sessions a day.
    Traffic("quiet", sessions_per_day=300),
    # The same day if Lambda kept idle environments for less or more time than assumed.
    Traffic("quiet, reclaim 5 min", sessions_per_day=300, reclaim_minutes=5),
    Traffic("quiet, reclaim 15 min", sessions_per_day=300, reclaim_minutes=15),
    # Programme scale: 2 million claims a year is about 5,500 adds a day; one add per session.
    Traffic("programme", sessions_per_day=5_500),
)


@dataclass
class _Environment:
    free_at: float  # seconds of the day when its current call ends


@dataclass
class DayResult:
    requests: int = 0
    cold_requests: int = 0
    peak_environments: int = 0
    session_waits_ms: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        waits = self.session_waits_ms
        return {
            "sessions": len(waits),
            "requests": self.requests,
            "cold_requests": self.cold_requests,
            "cold_request_share": round(self.cold_requests / self.requests, 4) if self.requests else 0.0,
            "sessions_with_a_cold_start_share": round(sum(1 for w in waits if w > 0) / len(waits), 4) if waits else 0.0,
            "session_wait_p50_ms": round(percentile(waits, 0.50), 1) if waits else 0.0,
            "session_wait_p95_ms": round(percentile(waits, 0.95), 1) if waits else 0.0,
            "session_wait_p99_ms": round(percentile(waits, 0.99), 1) if waits else 0.0,
            "session_wait_mean_ms": round(sum(waits) / len(waits), 1) if waits else 0.0,
            "peak_environments": self.peak_environments,
        }


class Fleet:
    """Execution environments per function: a call takes a warm free one, or starts a new one (cold)."""

    def __init__(self, reclaim_seconds: float) -> None:
        self.reclaim_seconds = reclaim_seconds
        self.environments: dict[str, list[_Environment]] = {}
        self.live = 0
        self.peak = 0

    def call(self, function: str, at: float, service_seconds: float, cold_seconds: float) -> bool:
        """Serve a call arriving ``at``; True when it waited for a cold start. It holds the environment."""
        for environments in self.environments.values():  # reclaimed anywhere: the live count is exact
            environments[:] = [e for e in environments if e.free_at > at or at - e.free_at <= self.reclaim_seconds]
        pool = self.environments.setdefault(function, [])
        self.live = sum(len(environments) for environments in self.environments.values())
        free = [e for e in pool if e.free_at <= at]
        if free:
            min(free, key=lambda e: at - e.free_at).free_at = at + service_seconds
            return False
        pool.append(_Environment(free_at=at + cold_seconds + service_seconds))
        self.live += 1
        self.peak = max(self.peak, self.live)
        return True


def simulate(
    layout: Mapping[tuple[str, str], str],
    traffic: Traffic,
    cold_ms: Callable[[str], float],
    steps: Sequence[Step] = SESSION,
) -> DayResult:
    """One day of ``traffic`` on ``layout``; ``cold_ms(function)`` is a cold start's cost in ms."""
    functions = session_functions(layout, steps)
    rng = random.Random(traffic.seed)  # noqa: S311 - a reproducible simulation, not a secret
    weights = sum(HOURLY_PROFILE)
    starts: list[float] = []
    for hour, weight in enumerate(HOURLY_PROFILE):
        count = round(traffic.sessions_per_day * weight / weights)
        starts.extend(hour * 3600 + rng.random() * 3600 for _ in range(count))
    thinks = [[rng.expovariate(1 / s.think_seconds) if s.think_seconds else 0.0 for s in steps] for _ in starts]
    events: list[tuple[float, int, int]] = [(at, number, 0) for number, at in enumerate(starts)]
    heapq.heapify(events)
    fleet = Fleet(traffic.reclaim_minutes * 60)
    waited = [0.0] * len(starts)
    result = DayResult()
    warm = traffic.warm_ms / 1000
    while events:
        at, number, index = heapq.heappop(events)
        function = functions[index]
        cold = cold_ms(function) / 1000
        result.requests += 1
        if fleet.call(function, at, warm, cold):
            result.cold_requests += 1
            waited[number] += cold * 1000
            answered = at + cold + warm
        else:
            answered = at + warm
        if index + 1 < len(steps):
            heapq.heappush(events, (answered + thinks[number][index], number, index + 1))
    result.peak_environments = fleet.peak
    result.session_waits_ms = waited
    return result


# ---------------------------------------------------------------- the section


def cold_start_costs(
    layout: Mapping[tuple[str, str], str], measured: Mapping[str, float] | None
) -> tuple[Callable[[str], float], str]:
    """Cost of a cold start per function of ``layout``, in ms, and where it comes from.

    Measured: each of today's functions' CPU time from the same run's cold_start section; a function of
    another layout costs what the dearest of today's functions serving its routes costs (a route alone in
    a function imports the same stack and hardly less). Otherwise the documented constant.
    """
    if not measured:
        return (lambda _function: DOCUMENTED_COLD_START_MS), COLD_START_SOURCE_DOCUMENTED
    members: dict[str, list[str]] = {}
    current = today()
    for route, function in layout.items():
        members.setdefault(function, []).append(current.get(route, function))
    costs = {
        function: max((measured.get(m, DOCUMENTED_COLD_START_MS) for m in names), default=DOCUMENTED_COLD_START_MS)
        for function, names in members.items()
    }
    known = sum(1 for name in set(current.values()) if name in measured)
    source = (
        f"this run's cold_start section (CPU ms) for {known} of today's {len(set(current.values()))} routed "
        f"functions, the documented {DOCUMENTED_COLD_START_MS:.0f} ms for the others"
    )
    return (lambda function: costs.get(function, DOCUMENTED_COLD_START_MS)), source


def measure(cold_start: Mapping[str, Any] | None = None, traffic: Sequence[Traffic] = TRAFFIC) -> dict[str, Any]:
    """The session's cold starts per layout, and a simulated day of each traffic level per layout."""
    measured = None
    if cold_start and not cold_start.get("error"):
        measured = {row["function"]: float(row["cpu_ms"]) for row in cold_start.get("functions", [])}
    rows: list[dict[str, Any]] = []
    source = COLD_START_SOURCE_DOCUMENTED
    for name, layout in layouts().items():
        cost, source = cold_start_costs(layout, measured)
        functions = session_functions(layout)
        distinct = list(dict.fromkeys(functions))
        row: dict[str, Any] = {
            "layout": name,
            "functions_in_layout": len(set(layout.values())),
            "session_functions": distinct,
            "cold_starts_when_idle": len(distinct),
            "idle_session_wait_ms": round(sum(cost(f) for f in distinct), 1),
            "days": {},
        }
        for level in traffic:
            row["days"][level.name] = simulate(layout, level, cost).figures()
        rows.append(row)
    today_row = next(row for row in rows if row["layout"] == "today")
    return {
        "what": "cold starts a partner session meets (distinct functions of its calls) and a simulated day",
        "target": f"<= {TARGET_COLD_STARTS} cold starts in the session on template.yaml's functions (issue 16)",
        "session": [asdict(step) for step in SESSION],
        "cold_start_source": source,
        "traffic": [asdict(level) for level in traffic],
        "hourly_profile": list(HOURLY_PROFILE),
        "layouts": rows,
        "met": today_row["cold_starts_when_idle"] <= TARGET_COLD_STARTS,
    }
