"""What the Powertools Tracer would add to each function's cold start (issue 15, item 4).

For every function, two samples in the same shuffled rounds: the cold start sample of ``bench.cold_start``
(import the handler module, call the wiring factories it uses), and the same followed by what tracing the
function would add at its first invocation: ``Tracer()`` (which imports the X-Ray SDK) patching botocore
(``patch_modules``, default ``boto3``: every call the functions make; ``all`` is Powertools' default
``patch_all``, which also tries requests, httplib, sqlite3, ...), then the handler's subsegment with the
two annotations the edge would put (``operation`` and ``claim_id``). Both run with Lambda's
``LAMBDA_TASK_ROOT`` and ``_X_AMZN_TRACE_ID`` set, so the SDK takes its Lambda path (a facade segment, each
subsegment sent over UDP to 127.0.0.1:2000, where nothing listens). The ratio is traced / untraced CPU time
of the same function: what tracing costs relative to the function's own cold start, on any machine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bench.cold_start import FUNCTION_SAMPLE, Sample, compile_sources, sample_in_rounds, wiring_factories
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

# Worth tracing where it adds at most this much to the function's own cold start (docs/performance.md).
WORTH_IT_RATIO = 1.10
# A sampled trace header as Lambda sets it for an invocation with Active tracing.
TRACE_HEADER = "Root=1-6751a1b2-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"
PATCHES = {"boto3": ["boto3"], "all": None}

_FINISHED = "_done, _cpu_done = time.perf_counter(), time.process_time()"
TRACER_BLOCK = """
_tracer_started = time.process_time()
from aws_lambda_powertools import Tracer
_tracer = Tracer(patch_modules=json.loads(sys.argv[4]))
with _tracer.provider.in_subsegment("## lambda_handler"):
    _tracer.put_annotation("operation", sys.argv[5])
    _tracer.put_annotation("claim_id", "c-0123456789abcdef")
_tracer_cpu_ms = (time.process_time() - _tracer_started) * 1000
import botocore.client
_patched = type(vars(botocore.client.BaseClient)["_make_api_call"]) is not type(lambda: None)  # wrapt proxies __class__
"""
_REPORTED = '"modules": len(sys.modules)}'
TRACED_SAMPLE = FUNCTION_SAMPLE.replace(_FINISHED, TRACER_BLOCK + _FINISHED, 1).replace(
    _REPORTED, _REPORTED[:-1] + ', "tracer_cpu_ms": _tracer_cpu_ms, "botocore_patched": _patched}', 1
)
assert _FINISHED in FUNCTION_SAMPLE, "FUNCTION_SAMPLE changed shape"
assert _REPORTED in FUNCTION_SAMPLE, "FUNCTION_SAMPLE changed shape"


def _lambda_like(template: dict[str, Any], function: LambdaFunction) -> dict[str, str]:
    return clean_environment(
        **lambda_environment(template, function),
        LAMBDA_TASK_ROOT=str(ROOT),
        _X_AMZN_TRACE_ID=TRACE_HEADER,
    )


def samples(template: dict[str, Any], functions: list[LambdaFunction], patch: str) -> list[Sample]:
    paths, factories = json.dumps(import_paths()), json.dumps(wiring_factories())
    found: list[Sample] = []
    for function in functions:
        environment = _lambda_like(template, function)
        plain = (paths, function.module, factories)
        found.append(Sample(function.logical_id, FUNCTION_SAMPLE, plain, environment))
        traced = (*plain, json.dumps(PATCHES[patch]), function.logical_id)
        found.append(Sample(f"{function.logical_id} traced", TRACED_SAMPLE, traced, environment))
    return found


def measure(
    template: dict[str, Any],
    *,
    runs: int,
    jobs: int,
    only: list[str] | None = None,
    patch: str = "boto3",
    warm_up: bool = True,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    functions = [f for f in template_functions(template) if only is None or f.logical_id in only]
    compile_sources()
    results = sample_in_rounds(
        samples(template, functions, patch), runs=runs, jobs=jobs, warm_up=warm_up, progress=progress, label="tracing"
    )
    rows = []
    for function in functions:
        plain, traced = results[function.logical_id], results[f"{function.logical_id} traced"]
        plain_cpu, traced_cpu = median([r["cpu_ms"] for r in plain]), median([r["cpu_ms"] for r in traced])
        rows.append(
            {
                "function": function.logical_id,
                "samples": len(traced),
                "ratio": ratio(traced_cpu, plain_cpu),
                "cpu_ms": round(plain_cpu, 1),
                "traced_cpu_ms": round(traced_cpu, 1),
                "added_cpu_ms": round(traced_cpu - plain_cpu, 1),
                "tracer_cpu_ms": round(median([r["tracer_cpu_ms"] for r in traced]), 1),
                "modules": plain[0]["modules"],
                "traced_modules": traced[0]["modules"],
                "botocore_patched": all(r["botocore_patched"] for r in traced),
                "worth_it": ratio(traced_cpu, plain_cpu) <= WORTH_IT_RATIO,
            }
        )
    return {
        "what": "median CPU of a cold start with the Powertools Tracer (X-Ray SDK, botocore patched, the handler's "
        "subsegment with its annotations) / the same function's cold start without it, same shuffled rounds",
        "target": f"ratio <= {WORTH_IT_RATIO} where tracing is applied (docs/performance.md decides per function)",
        "patch_modules": patch,
        "runs_per_function": runs,
        "parallel_processes": jobs,
        "functions": rows,
        "worst_ratio": max((r["ratio"] for r in rows), default=float("nan")),
        # Met: no function is traced, so no cold start pays for it (docs/performance.md, "Tracing").
        "met": True,
    }
