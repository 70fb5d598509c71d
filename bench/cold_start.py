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
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
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
_names = [n for n in json.loads(sys.argv[3]) if hasattr(wiring, n)]  # a compared older checkout may lack some
_used = [n for n in _names if any(getattr(m, n, None) is getattr(wiring, n) for m in _modules)]
for name in _used:
    getattr(wiring, name)()
_done, _cpu_done = time.perf_counter(), time.process_time()
from mci.adapters import aws  # the clients it created (for its floor): the cached factories already called
_made = [getattr(aws, n)() for n, f in vars(aws).items() if hasattr(f, "cache_info") and f.cache_info().currsize]
_clients = sorted(c.meta.service_model.service_name for c in _made if hasattr(c, "meta"))
print(json.dumps({"import_ms": (_imported - _started) * 1000, "init_ms": (_done - _imported) * 1000,
                  "total_ms": (_done - _started) * 1000, "cpu_ms": (_cpu_done - _cpu) * 1000,
                  "factories": _used, "clients": _clients, "modules": len(sys.modules)}))
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


# The floor (issue 16, item 4): what the design card's libraries cost a function before any code of ours. boto3 and
# the clients the function creates at start (from one session), pydantic's models, Powertools' Logger and Metrics,
# and for an HTTP function a validating APIGatewayHttpResolver (the stack every HTTP function must import); no mci.
FLOOR_SAMPLE = r"""
import time
_started, _cpu = time.perf_counter(), time.process_time()
import importlib, json, sys
import boto3
from pydantic import BaseModel
from aws_lambda_powertools import Logger, Metrics
_http = sys.argv[2] == "http"
if _http:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
_imported = time.perf_counter()
_session = boto3.session.Session()
for _service in json.loads(sys.argv[1]):
    _session.client(_service)
Logger(), Metrics()
if _http:
    APIGatewayHttpResolver(enable_validation=True)
_done, _cpu_done = time.perf_counter(), time.process_time()
print(json.dumps({"import_ms": (_imported - _started) * 1000, "init_ms": (_done - _imported) * 1000,
                  "total_ms": (_done - _started) * 1000, "cpu_ms": (_cpu_done - _cpu) * 1000,
                  "factories": [], "ours": sorted(m for m in sys.modules if m.split(".")[0] in ("mci", "functions")),
                  "modules": len(sys.modules)}))
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
from bench.world import REGION as world_region, World, bench_context, warm_moto
from local.answers import Answer
from tests.support.reference import NOW
key, primed, warm_requests = sys.argv[2], sys.argv[3] == "primed", int(sys.argv[4])
(scenario,) = [s for s in scenarios() if s.key == key]
world = World(customers=warm_requests + 4, now=NOW).start()
# moto compiles its SES v2 routes (werkzeug) at the process's first SES v2 call, about 300 ms: moto's, not
# ours, and not AWS's. Done here with a client of its own, so the function's clients stay as they were.
import boto3
boto3.session.Session().client("sesv2", region_name=world_region).list_email_identities()
# moto's own first DynamoDB work (its expression parsers, first transaction, serializer): on AWS, DynamoDB's time.
warm_moto(world_region)
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
times, own, imported = [], [], []
for call in calls:
    context = bench_context(call.function)  # the harness's own work (it reads functions.table), before the clock
    loaded = set(sys.modules)
    cpu, in_moto[0] = time.process_time(), 0.0  # CPU time, as the cold start ratios: a shared machine adds waiting
    answer = Answer.of_result(module.lambda_handler(call.event, context))
    times.append((time.process_time() - cpu) * 1000)
    if len(times) == 1:
        imported = sorted(set(sys.modules) - loaded)  # what the first request imported, inside the clock
    own.append(times[-1] - in_moto[0] * 1000)
    problem = call.check(answer)
    if problem is not None:
        raise SystemExit(f"{key}: {problem}")
world.stop()
print(json.dumps({"first_ms": times[0], "warm_ms": statistics.median(times[1:]), "own_first_ms": own[0],
                  "own_warm_ms": statistics.median(own[1:]), "function": calls[0].function,
                  "moto_first_ms": times[0] - own[0],
                  "moto_warm_ms": statistics.median(t - o for t, o in zip(times[1:], own[1:])),
                  "first_imports": imported, "primed_answers": answers}))
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
WARM_REQUESTS = 9  # the warm side of each ratio: a median of 9, steadier than the first request it divides


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


def compile_sources(root: Path = ROOT) -> None:
    """Bytecode compiled once up front, as pip does for site-packages: no sample pays for compiling."""
    compileall.compile_dir(str(root / "shared"), quiet=1)
    compileall.compile_dir(str(root / "functions"), quiet=1)


def compared_samples(tree: Path, only: list[str] | None) -> tuple[list[Sample], list[LambdaFunction]]:
    """The cold start samples of another checkout of the project (``tree``: its template, handlers and mci), sampled
    in the same rounds as this one's: a before/after comparison under the same load (``--compare``)."""
    from local.cloudformation import load_template

    template = load_template(tree / "template.yaml")
    functions = [f for f in template_functions(template) if only is None or f.logical_id in only]
    compile_sources(tree)
    paths = json.dumps([str(tree / "shared"), str(tree)])
    samples = [
        Sample(
            f"{tree} {f.logical_id}",
            FUNCTION_SAMPLE,
            (paths, f.module, json.dumps(wiring_factories())),
            clean_environment(**lambda_environment(template, f)),
        )
        for f in functions
    ]
    return samples, functions


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
                # Each process's first request against its own warm ones (same process, same load), then the median
                # over processes: a loaded moment that slows one process's requests cancels out of its ratio.
                "process_ratio": ratio(median([r["first_ms"] / r["warm_ms"] for r in results]), 1),
                "own_process_ratio": ratio(median([r["own_first_ms"] / r["own_warm_ms"] for r in results]), 1),
                "moto_first_ms": round(median([r["moto_first_ms"] for r in results]), 1),
                "moto_warm_ms": round(median([r["moto_warm_ms"] for r in results]), 1),
                "first_imports": sorted({name for r in results for name in r["first_imports"]}),
            }
        row["primed_answers"] = found[f"{key}|primed"][0]["primed_answers"]
        row["met"] = row["primed"]["process_ratio"] <= PRIMED_TARGET
        row["own_met"] = row["primed"]["own_process_ratio"] <= PRIMED_TARGET
        rows.append(row)
    return {
        "what": "first request / median of the next warm requests (CPU time), in a fresh process after import (moto);"
        " own_*: without the CPU moto spent answering the calls; process_ratio: the median over processes of each"
        " process's own first / warm (ratio: of the medians over processes); moto's first-call work done in setup",
        "target": f"primed process_ratio <= {PRIMED_TARGET} (SnapStart's before-snapshot hook run first)",
        "runs_per_scenario": runs,
        "warm_requests": WARM_REQUESTS,
        "scenarios": rows,
        "met": all(r["met"] for r in rows),
        "own_met": all(r["own_met"] for r in rows),
    }


def floor_samples(
    template: dict[str, Any], functions: list[LambdaFunction], measured: list[Sample], *, jobs: int
) -> dict[str, Sample]:
    """Each function's floor sample, by function: one sample per kind of floor (HTTP or not, the clients).

    Which clients a function creates at start is learned from one untimed run of its own sample."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        learned = dict(pool.map(_run, measured))
    floors: dict[str, Sample] = {}
    for function in functions:
        clients = learned[function.logical_id]["clients"]
        name = f"floor: {'HTTP, ' if function.http else ''}{' + '.join(clients) or 'no client'}"
        arguments = (json.dumps(clients), "http" if function.http else "event")
        environment = clean_environment(**lambda_environment(template, function))
        floors[function.logical_id] = Sample(name, FLOOR_SAMPLE, arguments, environment)
    return floors


def measure(
    template: dict[str, Any],
    *,
    runs: int,
    jobs: int,
    only: list[str] | None = None,
    baselines_per_round: int = 1,
    warm_up: bool = True,
    compare: tuple[Path, ...] = (),
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    functions = [f for f in template_functions(template) if only is None or f.logical_id in only]
    compile_sources()
    baseline, measured = samples_for(template, functions)
    floors = floor_samples(template, functions, measured, jobs=jobs)
    distinct_floors = list({sample.name: sample for sample in floors.values()}.values())
    compared = {tree: compared_samples(tree, only) for tree in compare}
    results = sample_in_rounds(
        [
            *([baseline] * baselines_per_round),
            *measured,
            *distinct_floors,
            *(s for samples, _ in compared.values() for s in samples),
        ],
        runs=runs,
        jobs=jobs,
        warm_up=warm_up,
        progress=progress,
    )
    base = results["baseline"]
    base_cpu = median([r["cpu_ms"] for r in base])
    base_wall = median([r["total_ms"] for r in base])
    floor_cpu = {s.name: median([r["cpu_ms"] for r in results[s.name]]) for s in distinct_floors}
    rows = []
    for function in functions:
        found = results[function.logical_id]
        cpu = median([r["cpu_ms"] for r in found])
        wall = median([r["total_ms"] for r in found])
        floor = floors[function.logical_id].name
        rows.append(
            {
                "function": function.logical_id,
                "module": function.module,
                "factories": found[0]["factories"],
                "clients": found[0]["clients"],
                "samples": len(found),
                "ratio": ratio(cpu, base_cpu),
                "cpu_ms": round(cpu, 1),
                "wall_ratio": ratio(wall, base_wall),
                "median_ms": round(wall, 1),
                "import_ms": round(median([r["import_ms"] for r in found]), 1),
                "init_ms": round(median([r["init_ms"] for r in found]), 1),
                "modules": found[0]["modules"],
                "floor": floor,
                # our code's own share: the function against what the libraries alone cost it
                "floor_ratio": ratio(cpu, floor_cpu[floor]),
                "above_floor_cpu_ms": round(cpu - floor_cpu[floor], 1),
                "met": ratio(cpu, base_cpu) <= TARGET_RATIO,
            }
        )
    floor_rows = [
        {
            "floor": sample.name,
            "http": sample.arguments[1] == "http",
            "clients": json.loads(sample.arguments[0]),
            "functions": [f for f, s in floors.items() if s.name == sample.name],
            "samples": len(results[sample.name]),
            "ratio": ratio(floor_cpu[sample.name], base_cpu),
            "cpu_ms": round(floor_cpu[sample.name], 1),
            "modules": results[sample.name][0]["modules"],
            "imports_ours": results[sample.name][0]["ours"],
            "met": ratio(floor_cpu[sample.name], base_cpu) <= TARGET_RATIO,
        }
        for sample in distinct_floors
    ]
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
        "floors": floor_rows,
        "floor_what": "boto3 with the function's clients, pydantic, Powertools Logger and Metrics and, for an HTTP "
        "function, a validating APIGatewayHttpResolver: the design card's libraries alone, no mci",
        "functions": rows,
        "worst_ratio": max((r["ratio"] for r in rows), default=float("nan")),
        "met": all(r["met"] for r in rows),
        "compared": [_compared(tree, functions, results, base_cpu) for tree, (_, functions) in compared.items()],
    }


def _compared(
    tree: Path, functions: list[LambdaFunction], results: dict[str, list[dict[str, Any]]], base_cpu: float
) -> dict[str, Any]:
    commit = subprocess.run(  # noqa: S603 - git, on the compared checkout
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, as make does
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    rows = []
    for function in functions:
        found = results[f"{tree} {function.logical_id}"]
        cpu = median([r["cpu_ms"] for r in found])
        rows.append(
            {
                "function": function.logical_id,
                "samples": len(found),
                "ratio": ratio(cpu, base_cpu),
                "cpu_ms": round(cpu, 1),
                "factories": found[0]["factories"],
                "modules": found[0]["modules"],
            }
        )
    return {"tree": str(tree), "commit": commit, "functions": rows}
