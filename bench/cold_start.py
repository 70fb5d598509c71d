"""Cold start: fresh processes importing a handler and building what it uses, against boto3 alone.

Each sample is a new interpreter. The function's sample imports ``functions.<folder>.app`` with the
function's environment from template.yaml and calls the ``mci.wiring`` factories the handler module
imported, or the route modules it includes (``ROUTES`` of a grouped function), i.e. settings, boto3
clients, adapters, use cases, which make no network call. The baseline
sample imports boto3 and creates one DynamoDB client. Both time themselves from their first line, so
interpreter start-up (the same for both) is left out; samples are interleaved in shuffled rounds so
both sides see the same machine load. The ratio is of CPU time (``time.process_time``): importing is
CPU-bound, and on a shared machine the wall time of a process also holds the time it waited for a
core, which made functions with identical imports differ by up to 0.9 in one run. Wall times are
reported beside it.
"""

from __future__ import annotations

import compileall
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.common import (
    ROOT,
    SHARED,
    LambdaFunction,
    clean_environment,
    import_paths,
    lambda_environment,
    median,
    ratio,
    template_functions,
)

TARGET_RATIO = 1.3

FUNCTION_SAMPLE = r"""
import time
_started, _cpu = time.perf_counter(), time.process_time()
import importlib, json, sys
sys.path[:0] = json.loads(sys.argv[1])
_module = importlib.import_module(sys.argv[2])
_imported = time.perf_counter()
from mci import wiring
_modules = [_module, *getattr(_module, "ROUTES", ())]  # a grouped function's route modules (functions/reads)
_used = [n for n in json.loads(sys.argv[3]) if any(getattr(m, n, None) is getattr(wiring, n) for m in _modules)]
for name in _used:
    getattr(wiring, name)()
_done, _cpu_done = time.perf_counter(), time.process_time()
print(json.dumps({"import_ms": (_imported - _started) * 1000, "init_ms": (_done - _imported) * 1000,
                  "total_ms": (_done - _started) * 1000, "cpu_ms": (_cpu_done - _cpu) * 1000,
                  "factories": _used, "modules": len(sys.modules)}))
"""

BASELINE_SAMPLE = r"""
import time
_started, _cpu = time.perf_counter(), time.process_time()
import importlib, json, sys
import boto3
_imported = time.perf_counter()
boto3.session.Session().client("dynamodb")
_done, _cpu_done = time.perf_counter(), time.process_time()
print(json.dumps({"import_ms": (_imported - _started) * 1000, "init_ms": (_done - _imported) * 1000,
                  "total_ms": (_done - _started) * 1000, "cpu_ms": (_cpu_done - _cpu) * 1000,
                  "factories": [], "modules": len(sys.modules)}))
"""


# SnapStart (issue 16, item 3): what a primed function still leaves for its first request. One fresh process
# per sample: moto with the template's tables and reference data, the scenario's state prepared (through the
# other handlers), then the measured function imported and, when primed, its before-snapshot hook run as
# Lambda would; then its first request and WARM_REQUESTS more of the same scenario, each on fresh state.
# Each request's CPU time is taken whole, and without what moto (AWS's stand-in, in this process) spent
# answering its calls: on Lambda that is the service's time, not the function's.
PRIMED_SAMPLE = r"""
import importlib, json, statistics, sys, time
sys.path[:0] = json.loads(sys.argv[1])
from moto.core.models import botocore_stubber
in_moto = [0.0]
_answer = type(botocore_stubber).__call__
def _counted(self, *args, **kwargs):
    started = time.process_time()
    try:
        return _answer(self, *args, **kwargs)
    finally:
        in_moto[0] += time.process_time() - started
type(botocore_stubber).__call__ = _counted
from bench.scenarios import Flows, scenarios
from bench.world import REGION as world_region, World
from tests.support.reference import NOW
key, primed, warm_requests = sys.argv[2], sys.argv[3] == "primed", int(sys.argv[4])
(scenario,) = [s for s in scenarios() if s.key == key]
world = World(customers=warm_requests + 4, now=NOW).start()
# moto compiles its SES v2 routes (werkzeug) at the process's first SES v2 call, about 300 ms: moto's, not
# ours, and not AWS's. Done here with a client of its own, so the function's clients stay as they were.
import boto3
boto3.session.Session().client("sesv2", region_name=world_region).list_email_identities()
flows = Flows(world)
calls = [scenario.prepare(flows) for _ in range(warm_requests + 1)]
# The preparation ran other functions' handlers in this process: forget their clients, adapters and use cases,
# so that the measured function builds its own (at its first request, or primed), as a new Lambda would.
from mci import wiring
from mci.http import idempotency
wiring.reset()
idempotency.reset()
module = importlib.import_module(f"functions.{calls[0].function}.app")
from mci import snapstart
answers = {}
if primed:
    (hook,) = [h for h in snapstart.BEFORE_SNAPSHOT if getattr(h, "args", (None,))[0] is module.app]
    answers = hook()
    snapstart.run_after_restore()
times, own = [], []
for call in calls:
    cpu, in_moto[0] = time.process_time(), 0.0  # CPU time, as the cold start ratios: a shared machine adds waiting
    answer, _ = world.timed_invoke(call.function, call.event)
    times.append((time.process_time() - cpu) * 1000)
    own.append(times[-1] - in_moto[0] * 1000)
    problem = call.check(answer)
    if problem is not None:
        raise SystemExit(f"{key}: {problem}")
world.stop()
print(json.dumps({"first_ms": times[0], "warm_ms": statistics.median(times[1:]), "own_first_ms": own[0],
                  "own_warm_ms": statistics.median(own[1:]), "function": calls[0].function,
                  "primed_answers": answers}))
"""
# One scenario per HTTP function (functions/table.py), and the add with an Idempotency-Key the web app sends.
PRIMED_FUNCTIONS = {
    "customers_eligible": "ReadsFunction",
    "add_customer_1": "AddCustomerFunction",
    "add_customer_1_key": "AddCustomerFunction",
    "claim_customer": "ClaimCustomerFunction",
    "consent_send": "RequestConsentFunction",
    "consent_page_get": "ConsentPageFunction",
    "consent_page_post": "ConsentPageFunction",
    "submit_claim": "SubmitClaimFunction",
    "cancel_claim": "CancelClaimFunction",
    "review_claim": "ReviewClaimFunction",
    "load_reference_data": "LoadReferenceDataFunction",
}
PRIMED_SCENARIOS = tuple(PRIMED_FUNCTIONS)
PRIMED_TARGET = 1.2
WARM_REQUESTS = 5


@dataclass(frozen=True)
class Sample:
    name: str
    script: str
    arguments: tuple[str, ...]
    environment: dict[str, str]


def wiring_factories() -> list[str]:
    """The cached factories of the composition root (services, consent_outbox, sweep, ...)."""
    from mci import wiring

    return sorted(
        name for name, value in vars(wiring).items() if not name.startswith("_") and hasattr(value, "cache_clear")
    )


def _run(sample: Sample) -> tuple[str, dict[str, Any]]:
    done = subprocess.run(  # noqa: S603 - this interpreter, our own sample script
        [sys.executable, "-c", sample.script, *sample.arguments],
        cwd=ROOT,
        env=sample.environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{sample.name}: exit {done.returncode}: {done.stderr.strip()[-800:]}")
    return sample.name, json.loads(done.stdout.strip().splitlines()[-1])


def samples_for(template: dict[str, Any], functions: list[LambdaFunction]) -> tuple[Sample, list[Sample]]:
    paths = json.dumps(import_paths())
    factories = json.dumps(wiring_factories())
    baseline = Sample("baseline", BASELINE_SAMPLE, (), clean_environment())
    measured = [
        Sample(
            f.logical_id,
            FUNCTION_SAMPLE,
            (paths, f.module, factories),
            clean_environment(**lambda_environment(template, f)),
        )
        for f in functions
    ]
    return baseline, measured


def sample_in_rounds(
    batch: list[Sample],
    *,
    runs: int,
    jobs: int,
    warm_up: bool = True,
    progress: Callable[[str], None] = print,
    label: str = "cold start",
) -> dict[str, list[dict[str, Any]]]:
    """Every sample of ``batch`` ``runs`` times, in shuffled rounds, ``jobs`` processes at a time: by name."""
    shuffle = random.Random(7)  # noqa: S311 - the order of samples, not a secret
    rounds: list[Sample] = []
    for _ in range(runs):
        this_round = list(batch)
        shuffle.shuffle(this_round)
        rounds.extend(this_round)
    if warm_up and batch:
        _run(batch[0])  # one untimed start, so the first sample does not fill the OS file cache alone
    results: dict[str, list[dict[str, Any]]] = {}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for index, (name, result) in enumerate(pool.map(_run, rounds), start=1):
            results.setdefault(name, []).append(result)
            if index % max(1, len(rounds) // 5) == 0:
                progress(f"  {label}: {index}/{len(rounds)} processes ({time.monotonic() - started:.0f} s)")
    return results


def compile_sources() -> None:
    """Bytecode compiled once up front, as pip does for site-packages: no sample pays for compiling."""
    compileall.compile_dir(str(SHARED), quiet=1)
    compileall.compile_dir(str(ROOT / "functions"), quiet=1)


def measure_primed(
    *, runs: int, jobs: int, keys: tuple[str, ...] = PRIMED_SCENARIOS, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """First request ÷ warm request of a function after import, primed by its SnapStart hook and not."""
    paths = json.dumps(import_paths())
    environment = clean_environment()
    samples = [
        Sample(f"{key}|{variant}", PRIMED_SAMPLE, (paths, key, variant, str(WARM_REQUESTS)), environment)
        for key in keys
        for variant in ("primed", "unprimed")
    ] * runs
    random.Random(7).shuffle(samples)  # noqa: S311 - the order of samples, not a secret
    started = time.monotonic()
    found: dict[str, list[dict[str, Any]]] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for name, result in pool.map(_run, samples):
            found.setdefault(name, []).append(result)
    progress(f"  cold start, primed first requests: {len(samples)} processes ({time.monotonic() - started:.0f} s)")
    rows = []
    for key in keys:
        row: dict[str, Any] = {"scenario": key, "function": PRIMED_FUNCTIONS.get(key)}
        for variant in ("primed", "unprimed"):
            results = found[f"{key}|{variant}"]
            row[variant] = {
                "first_ms": round(median([r["first_ms"] for r in results]), 1),
                "warm_ms": round(median([r["warm_ms"] for r in results]), 1),
                "ratio": ratio(median([r["first_ms"] for r in results]), median([r["warm_ms"] for r in results])),
                # Without moto's share: what the function itself spends (on Lambda, the rest is the service's).
                "own_first_ms": round(median([r["own_first_ms"] for r in results]), 1),
                "own_warm_ms": round(median([r["own_warm_ms"] for r in results]), 1),
                "own_ratio": ratio(
                    median([r["own_first_ms"] for r in results]), median([r["own_warm_ms"] for r in results])
                ),
            }
        row["primed_answers"] = found[f"{key}|primed"][0]["primed_answers"]
        row["met"] = row["primed"]["ratio"] <= PRIMED_TARGET
        rows.append(row)
    return {
        "what": "first request / median of the next warm requests (CPU time), in a fresh process after import (moto);"
        " own_*: without the CPU moto spent answering the calls",
        "target": f"primed ratio <= {PRIMED_TARGET} (SnapStart's before-snapshot hook run first)",
        "runs_per_scenario": runs,
        "warm_requests": WARM_REQUESTS,
        "scenarios": rows,
        "met": all(r["met"] for r in rows),
    }


def measure(
    template: dict[str, Any],
    *,
    runs: int,
    jobs: int,
    only: list[str] | None = None,
    baselines_per_round: int = 1,
    warm_up: bool = True,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    functions = [f for f in template_functions(template) if only is None or f.logical_id in only]
    compile_sources()
    baseline, measured = samples_for(template, functions)
    results = sample_in_rounds(
        [*([baseline] * baselines_per_round), *measured], runs=runs, jobs=jobs, warm_up=warm_up, progress=progress
    )
    base = results["baseline"]
    base_cpu = median([r["cpu_ms"] for r in base])
    base_wall = median([r["total_ms"] for r in base])
    rows = []
    for function in functions:
        found = results[function.logical_id]
        cpu = median([r["cpu_ms"] for r in found])
        wall = median([r["total_ms"] for r in found])
        rows.append(
            {
                "function": function.logical_id,
                "module": function.module,
                "factories": found[0]["factories"],
                "samples": len(found),
                "ratio": ratio(cpu, base_cpu),
                "cpu_ms": round(cpu, 1),
                "wall_ratio": ratio(wall, base_wall),
                "median_ms": round(wall, 1),
                "import_ms": round(median([r["import_ms"] for r in found]), 1),
                "init_ms": round(median([r["init_ms"] for r in found]), 1),
                "modules": found[0]["modules"],
                "met": ratio(cpu, base_cpu) <= TARGET_RATIO,
            }
        )
    return {
        "what": "median import + init of the handler module in fresh processes / boto3 + one DynamoDB client",
        "target": f"ratio <= {TARGET_RATIO} for every function",
        "measure": "CPU time of each sample process (wall time too: wall_ratio, median_ms, import_ms, init_ms)",
        "runs_per_function": runs,
        "parallel_processes": jobs,
        "baseline": {
            "samples": len(base),
            "cpu_ms": round(base_cpu, 1),
            "median_ms": round(base_wall, 1),
            "import_ms": round(median([r["import_ms"] for r in base]), 1),
            "init_ms": round(median([r["init_ms"] for r in base]), 1),
            "modules": base[0]["modules"],
        },
        "functions": rows,
        "worst_ratio": max((r["ratio"] for r in rows), default=float("nan")),
        "met": all(r["met"] for r in rows),
    }
