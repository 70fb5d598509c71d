"""What every section shares: paths, the template's functions and their environment, statistics."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.aws_env import REGION, fake_aws_environment

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "shared"

# Never AWS: fake credentials and one region in every process the benchmark starts or runs.
FAKE_AWS = fake_aws_environment(REGION)


def import_paths() -> list[str]:
    """Where the handlers import from locally: the shared layer's ``mci`` package and the repository."""
    return [str(SHARED), str(ROOT)]


def use_import_paths() -> None:
    for path in reversed(import_paths()):
        if path not in sys.path:
            sys.path.insert(0, path)


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without AWS, Powertools or coverage settings, plus fake AWS ones."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "POWERTOOLS_", "COVERAGE_"))
        and name not in {"TABLE_NAME", "IDEMPOTENCY_TABLE_NAME", "EVENT_BUS_NAME", "PYTHONPATH"}
    }
    environment.update(FAKE_AWS)
    environment.update(extra)
    return environment


@dataclass(frozen=True)
class LambdaFunction:
    """A function of template.yaml whose code lives in ``functions/<folder>/``."""

    logical_id: str
    folder: str
    module: str
    memory: int
    http: bool = False  # served by API Gateway (an HttpApi event): its floor includes Powertools' resolver


def template_functions(template: Mapping[str, Any]) -> list[LambdaFunction]:
    defaults = dict((template.get("Globals") or {}).get("Function") or {})
    found: list[LambdaFunction] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = {**defaults, **(resource.get("Properties") or {})}
        code_uri = str(properties.get("CodeUri", "")).strip("/")
        if not code_uri.startswith("functions/"):
            continue
        folder = code_uri.split("/", 1)[1]
        handler_module = str(properties.get("Handler", "app.lambda_handler")).rpartition(".")[0]
        events = properties.get("Events") or {}
        found.append(
            LambdaFunction(
                logical_id=logical_id,
                folder=folder,
                module=f"functions.{folder}.{handler_module}",
                memory=int(properties.get("MemorySize", 128)),
                http=any(isinstance(e, dict) and e.get("Type") == "HttpApi" for e in events.values()),
            )
        )
    return found


def lambda_environment(template: Mapping[str, Any], function: LambdaFunction) -> dict[str, str]:
    """The function's environment as the template sets it (Globals + its own), as Lambda would add it."""
    from local.cloudformation import function_environment

    return {
        **function_environment(template, function.logical_id),
        "AWS_LAMBDA_FUNCTION_NAME": function.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    }


# ---------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return float(ordered[rank - 1])


def ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 3) if baseline > 0 else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
