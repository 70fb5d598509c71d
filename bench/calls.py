"""Round trips and warm overhead: every scenario through its real handler on moto, in process.

One pass serves both sections. Each measured call is counted (``before-call`` on the wiring's clients)
and timed; every AWS call of the pass is recorded. For warm overhead the recording is replayed right
after each invocation with bare boto3 clients in another region of the same moto: the same calls, on
the same state, without our code. The ratio of the medians is what our code (parsing, validation,
domain rules, serialisation, Powertools) costs on top of the AWS calls it has to make.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.common import median, ms, ratio
from bench.scenarios import SWEEP_DUE, Flows, Scenario, customers_needed, scenarios
from bench.world import World

WARM_TARGET = 1.3
SERVICES = ("dynamodb", "sesv2", "events")


def _per_service(counts: Counter[tuple[str, str]], units: int) -> dict[str, float]:
    totals: dict[str, float] = dict.fromkeys(SERVICES, 0.0)
    for (service, _), number in counts.items():
        totals[service] = totals.get(service, 0.0) + number
    return {service: round(number / units, 2) for service, number in totals.items()}


def _per_operation(counts: Counter[tuple[str, str]], units: int) -> dict[str, float]:
    return {f"{service}.{operation}": round(n / units, 2) for (service, operation), n in sorted(counts.items())}


def run(
    *,
    iterations: int,
    warmups: int,
    bare: bool,
    keys: list[str] | None = None,
    due: int = SWEEP_DUE,
    progress: Callable[[str], None] = print,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``due``: due claims per sweep run in the sweep scenarios."""
    from tests.support.reference import NOW

    chosen = [s for s in scenarios(due) if keys is None or s.key in keys]
    world = World(customers=customers_needed(iterations + warmups, due), now=NOW).start()
    flows = Flows(world)
    measured: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    try:
        for scenario in chosen:
            measured[scenario.key] = _measure(world, flows, scenario, iterations=iterations, warmups=warmups, bare=bare)
        elapsed = time.monotonic() - started
        progress(f"  handlers: {len(chosen)} scenarios, up to {iterations} calls each, on moto ({elapsed:.0f} s)")
    finally:
        world.stop()
    round_trips = _round_trips(chosen, measured)
    warm = _warm(chosen, measured) if bare else None
    return round_trips, warm


def _measure(
    world: World, flows: Flows, scenario: Scenario, *, iterations: int, warmups: int, bare: bool
) -> dict[str, Any]:
    assert world.counter is not None
    assert world.replayer is not None
    counts: list[Counter[tuple[str, str]]] = []
    seconds: list[float] = []
    bare_seconds: list[float] = []
    unhooked: list[int] = []
    units = 1
    if not scenario.warm:
        warmups, iterations = 0, 1  # counted once; timed only for the function's warm-overhead scenario
    for index in range(warmups + iterations):
        with world.recorder.tagged((scenario.key, index, "setup")):
            call = scenario.prepare(flows)
        is_measured = index >= warmups
        before = len(world.recorder.calls)
        with (
            world.recorder.tagged((scenario.key, index, "measured" if is_measured else "warmup")),
            world.counter.counting() as seen,
        ):
            answer, elapsed = world.timed_invoke(call.function, call.event)
        recorded = len(world.recorder.calls) - before
        problem = call.check(answer)
        if problem is not None:
            raise RuntimeError(f"{scenario.key}: {problem}")
        # The same calls, bare, right after: setup and this invocation, replayed in the other region.
        replayed = world.replayer.catch_up() if bare else {}
        if is_measured:
            counts.append(Counter(seen))
            seconds.append(elapsed)
            unhooked.append(recorded - sum(seen.values()))
            units = call.units
            if bare:
                bare_seconds.append(replayed.get((scenario.key, index), 0.0))
    return {"counts": counts, "seconds": seconds, "bare": bare_seconds, "unhooked": unhooked, "units": units}


def _round_trips(chosen: list[Scenario], measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for scenario in chosen:
        found = measured[scenario.key]
        units = found["units"]
        counts: list[Counter[tuple[str, str]]] = found["counts"]
        typical = max(counts, key=lambda c: sum(c.values()))
        per_service = _per_service(typical, units)
        row: dict[str, Any] = {
            "operation": scenario.key,
            "title": scenario.title,
            "function": scenario.function,
            "unit": scenario.unit,
            "note": scenario.note,
            "required": scenario.required,
            "measured": per_service,
            "operations": _per_operation(typical, units),
            "same_every_call": all(c == counts[0] for c in counts),
            "calls_outside_wiring_clients": max(found["unhooked"]),
        }
        if scenario.minimum is not None:
            minimum = {service: round(scenario.minimum.get(service, 0.0), 2) for service in SERVICES}
            row["minimum"] = minimum
            row["excess"] = {s: round(per_service[s] - minimum[s], 2) for s in SERVICES}
            row["met"] = all(per_service[s] <= minimum[s] + 1e-9 for s in SERVICES)
        rows.append(row)
    required = [r for r in rows if r["required"]]
    return {
        "what": "DynamoDB, SES and EventBridge calls per operation (botocore before-call on the wiring's clients)",
        "target": "equal to the documented minimum (docs/performance.md)",
        "operations": rows,
        "met": all(r.get("met", False) for r in required),
        "missed": [r["operation"] for r in required if not r.get("met", False)],
    }


def _warm(chosen: list[Scenario], measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for scenario in chosen:
        if not scenario.warm and any(s.warm and s.function == scenario.function for s in chosen):
            continue
        found = measured[scenario.key]
        handler = median(found["seconds"])
        bare_median = median(found["bare"])
        rows.append(
            {
                "handler": scenario.key,
                "function": scenario.function,
                "calls": len(found["seconds"]),
                "aws_calls_per_call": sum(found["counts"][0].values()),
                "handler_ms": ms(handler),
                "bare_ms": ms(bare_median),
                "ratio": ratio(handler, bare_median),
                "met": ratio(handler, bare_median) <= WARM_TARGET,
            }
        )
    return {
        "what": "median warm latency of the handler on moto in process / the same AWS calls made bare with boto3",
        "target": f"ratio <= {WARM_TARGET}",
        "handlers": rows,
        "worst_ratio": max((r["ratio"] for r in rows), default=float("nan")),
        "met": all(r["met"] for r in rows),
    }
