"""``python -m bench [--smoke] [--only SECTION ...] [--output PATH] [--jobs N]``: see bench/__init__.py."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.common import ROOT, use_import_paths

SECTIONS = (
    "size",
    "cold_start",
    "snapstart",
    "tracing",
    "round_trips",
    "warm_overhead",
    "sweep",
    "load",
    "session",
    "scale",
    "web",
)
# Sections a smoke run leaves out unless named with --only (web needs Chromium).
NOT_IN_SMOKE = ("web",)
DEFAULT_OUTPUT = ROOT / "bench" / "results.json"
# The operations issue 7 names: all a smoke run counts.
REQUIRED_OPERATIONS = (
    "add_customer_1",
    "add_customer_3",
    "claim_customer",
    "consent_send",
    "consent_page_get",
    "consent_page_post",
    "customers_eligible",
    "customers_ineligible",
    "customers_complete",
    "claim_details",
    "sweep_expire",
    "sweep_remind",
)


@dataclass(frozen=True)
class Sizes:
    cold_runs: int
    cold_functions: tuple[str, ...] | None
    primed_runs: int
    primed_scenarios: tuple[str, ...] | None
    calls_iterations: int
    calls_warmups: int
    calls_scenarios: tuple[str, ...] | None
    sweep_due_per_run: int
    sweep_claims: int
    sweep_backend: str
    load_clients: int
    load_seconds: float
    load_alone_seconds: float
    load_customers: int
    scale_customers: int
    scale_concurrency: int
    scale_backend: str


FULL = Sizes(
    cold_runs=15,
    cold_functions=None,
    primed_runs=5,
    primed_scenarios=None,
    calls_iterations=10,
    calls_warmups=1,
    calls_scenarios=None,
    sweep_due_per_run=5,
    sweep_claims=100_000,
    sweep_backend="dynamodb_local",
    load_clients=8,
    load_seconds=30.0,
    load_alone_seconds=3.0,
    load_customers=400,
    scale_customers=300,
    scale_concurrency=8,
    scale_backend="dynamodb_local",
)
SMOKE = Sizes(
    cold_runs=2,
    cold_functions=("AddCustomerFunction",),
    primed_runs=1,
    primed_scenarios=("add_customer_1",),
    calls_iterations=1,
    calls_warmups=0,
    calls_scenarios=REQUIRED_OPERATIONS,
    sweep_due_per_run=2,
    sweep_claims=1000,
    sweep_backend="moto",
    load_clients=2,
    load_seconds=1.0,
    load_alone_seconds=0.5,
    load_customers=150,
    scale_customers=20,
    scale_concurrency=4,
    scale_backend="moto",
)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: every section in seconds, figures meaningless"
    )
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run this section only (repeatable)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results file (default bench/results.json)")
    parser.add_argument("--jobs", type=int, default=3, help="cold start processes run at once (default 3)")
    parser.add_argument(
        "--function", action="append", metavar="LOGICAL_ID", help="cold start of this function only (repeatable)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        help="cold start processes per function (default 15; smoke 2); snapstart: per scenario and variant (5; 1)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        action="append",
        metavar="CHECKOUT",
        help="cold start: also sample another checkout's functions in the same rounds (repeatable; git worktree add)",
    )
    return parser.parse_args(argv)


def _log(text: str) -> None:
    print(text, flush=True)


def run_sections(
    chosen: list[str], sizes: Sizes, smoke: bool, jobs: int, compare: tuple[Path, ...] = ()
) -> dict[str, dict[str, Any]]:
    """Run the chosen sections; the slow setup of some runs while others measure.

    A smoke run's timings mean nothing, so the sections that work in other processes (cold start
    samples, the local stack) overlap with the in-process ones. A full run measures one section at a
    time, but builds what the later sections need meanwhile, in other processes: ``sam build``, the
    sweep's table (DynamoDB Local) and the local stack with its customers. Cold start and warm
    overhead are ratios to baselines sampled in the same rounds, so they see the same load.
    """
    done: dict[str, dict[str, Any]] = {}
    background = {"cold_start", "snapstart", "load"} if smoke else {"size"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        table = stack = None
        if "sweep" in chosen and sizes.sweep_backend == "dynamodb_local":
            table = pool.submit(_sweep_table, sizes)
        if "load" in chosen and not smoke:
            stack = pool.submit(_load_stack, sizes)
        works = _works(chosen, sizes, smoke, jobs, table=table, stack=stack, compare=compare)
        pending = {name: pool.submit(_timed, name, work) for name, work in works.items() if name in background}
        for name, work in works.items():
            if name not in background:
                done.update(_timed(name, work))
        for future in pending.values():
            done.update(future.result())
    if "session" in chosen:  # last: it prices cold starts with this run's cold_start section, when there is one
        from bench import session

        done.update(_timed("session", lambda: {"session": session.measure(done.get("cold_start"))}))
    return {name: done[name] for name in SECTIONS if name in done}


def _load_stack(sizes: Sizes) -> Any:
    from bench import load

    return load.prepare(customers=sizes.load_customers, progress=_log)


def _timed(name: str, work: Callable[[], dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    _log(f"[{time.strftime('%H:%M:%S')}] {name} ...")
    started = time.monotonic()
    try:
        return work()
    except Exception as error:
        traceback.print_exc()
        failed = {"error": f"{type(error).__name__}: {error}"[:2000], "met": False}
        return {part: dict(failed) for part in name.split(" + ")}
    finally:
        _log(f"[{time.strftime('%H:%M:%S')}] {name} took {time.monotonic() - started:.0f} s")


def _works(
    chosen: list[str],
    sizes: Sizes,
    smoke: bool,
    jobs: int,
    *,
    table: Future[Any] | None,
    stack: Future[Any] | None,
    compare: tuple[Path, ...] = (),
) -> dict[str, Callable[[], dict[str, dict[str, Any]]]]:
    """Section name -> what runs it and returns {section: result}; one pass makes both handler sections."""
    from local.cloudformation import load_template

    works: dict[str, Callable[[], dict[str, dict[str, Any]]]] = {}
    if "size" in chosen:
        from bench import size

        works["size"] = lambda: {"size": size.measure(smoke=smoke, progress=_log)}
    # Cold start and tracing sample fresh processes of the same functions, the same number of times.
    processes: dict[str, Any] = {
        "runs": sizes.cold_runs,
        "jobs": jobs,
        "only": list(sizes.cold_functions) if sizes.cold_functions else None,
        "warm_up": not smoke,
        "progress": _log,
    }
    if "cold_start" in chosen:
        from bench import cold_start

        works["cold_start"] = lambda: {
            "cold_start": cold_start.measure(load_template(), baselines_per_round=1, compare=compare, **processes)
        }
    if "snapstart" in chosen:
        from bench import cold_start

        primed = {"keys": sizes.primed_scenarios} if sizes.primed_scenarios else {}
        works["snapstart"] = lambda: {
            "snapstart": cold_start.measure_primed(runs=sizes.primed_runs, jobs=jobs, progress=_log, **primed)
        }
    if "tracing" in chosen:
        from bench import tracing

        works["tracing"] = lambda: {"tracing": tracing.measure(load_template(), **processes)}
    if "round_trips" in chosen or "warm_overhead" in chosen:
        from bench import calls

        bare = "warm_overhead" in chosen
        iterations, warmups = (sizes.calls_iterations, sizes.calls_warmups) if bare else (1, 0)
        keys = list(sizes.calls_scenarios) if sizes.calls_scenarios else None

        def handlers() -> dict[str, dict[str, Any]]:
            trips, warm = calls.run(
                iterations=iterations,
                warmups=warmups,
                bare=bare,
                keys=keys,
                due=sizes.sweep_due_per_run,
                progress=_log,
            )
            found = {"round_trips": trips} if "round_trips" in chosen else {}
            if warm is not None:
                found["warm_overhead"] = warm
            return found

        works[" + ".join(s for s in ("round_trips", "warm_overhead") if s in chosen)] = handlers
    if "sweep" in chosen:
        from bench import sweep

        works["sweep"] = lambda: {"sweep": _sweep(sweep, sizes, table)}
    if "web" in chosen:
        from bench import web

        works["web"] = lambda: {"web": web.measure(progress=_log)}
    if "load" in chosen:
        from bench import load

        def run_load() -> dict[str, dict[str, Any]]:
            if stack is None:
                return {
                    "load": load.measure(
                        clients=sizes.load_clients,
                        seconds=sizes.load_seconds,
                        alone_seconds=sizes.load_alone_seconds,
                        customers=sizes.load_customers,
                        background=not smoke,
                        progress=_log,
                    )
                }
            return {
                "load": load.drive(
                    stack.result(),
                    clients=sizes.load_clients,
                    seconds=sizes.load_seconds,
                    alone_seconds=sizes.load_alone_seconds,
                )
            }

        works["load"] = run_load
    if "scale" in chosen:
        from bench import scale

        works["scale"] = lambda: {
            "scale": scale.measure(
                customers=sizes.scale_customers,
                concurrency=sizes.scale_concurrency,
                backend=sizes.scale_backend,
                progress=_log,
            )
        }
    return works


def _sweep_table(sizes: Sizes) -> Any:
    """The full run's table on DynamoDB Local, or the reason it could not start (no Java or npm)."""
    from bench import sweep
    from tests.support.dynamodb_local import Unavailable

    try:
        return sweep.prepare(claims=sizes.sweep_claims, backend="dynamodb_local", progress=_log)
    except Unavailable as missing:
        return missing


def _sweep(sweep: Any, sizes: Sizes, table: Future[Any] | None) -> dict[str, Any]:
    """DynamoDB Local when Java and npm are there; otherwise moto with a tenth of the claims, said so."""
    if table is None:
        measured: dict[str, Any] = sweep.measure(claims=sizes.sweep_claims, backend=sizes.sweep_backend)
        return measured
    prepared = table.result()
    if not isinstance(prepared, Exception):
        result: dict[str, Any] = sweep.measure_table(prepared)
        return result
    _log(f"  sweep: DynamoDB Local unavailable ({prepared}); moto with {sizes.sweep_claims // 10} claims")
    fallback: dict[str, Any] = sweep.measure(claims=sizes.sweep_claims // 10, backend="moto", progress=_log)
    fallback["fallback"] = f"DynamoDB Local unavailable: {prepared}"
    return fallback


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    use_import_paths()
    os.chdir(ROOT)
    sizes = SMOKE if arguments.smoke else FULL
    if arguments.function:
        sizes = replace(sizes, cold_functions=tuple(arguments.function))
    if arguments.runs:
        sizes = replace(sizes, cold_runs=arguments.runs, primed_runs=arguments.runs)
    chosen = [s for s in SECTIONS if arguments.only is None or s in arguments.only]
    if arguments.smoke and arguments.only is None:
        chosen = [s for s in chosen if s not in NOT_IN_SMOKE]
    started = time.monotonic()
    sections = run_sections(chosen, sizes, arguments.smoke, max(1, arguments.jobs), tuple(arguments.compare or ()))
    output: Path = arguments.output
    results: dict[str, Any] = {"sections": {}}
    if arguments.only and output.exists():
        try:
            results = json.loads(output.read_text())  # --only refreshes its sections, keeps the others
        except ValueError:
            results = {"sections": {}}
    results.setdefault("sections", {}).update(sections)
    results["sections"] = {name: results["sections"][name] for name in SECTIONS if name in results["sections"]}
    results["meta"] = {
        "mode": "smoke" if arguments.smoke else "full",
        "sections_run": list(sections),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.monotonic() - started, 1),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        "sizes": sizes.__dict__,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    from bench.report import table

    _log(table(results))
    _log(f"\nResults in {output} ({results['meta']['seconds']} s).")
    return 1 if any(s.get("error") for s in sections.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
