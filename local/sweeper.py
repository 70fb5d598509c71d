"""The expiry sweep on the local stack (SPEC §6, rule 17): on demand and every minute in the background.

    POST /_local/sweep     run ExpireClaimsFunction now -> its report {examined, expired, reminded, ...}

On AWS, EventBridge Scheduler invokes ExpireClaimsFunction at a fixed rate; moto stores schedules but
never fires them, so the local stack runs the real handler itself: through ``stack.invoke``, with the
event the Scheduler would deliver (a Lambda target receives the schedule's Input; the template sets none,
and the handler reads nothing from it), kept in ``events/expire_claims.json``. The sweep is idempotent and
one invocation runs at a time (the function's execution environment is locked), as with
``ReservedConcurrentExecutions: 1``.

While the stack runs, a background thread sweeps every ``LOCAL_SWEEP_SECONDS`` (default 60; 0 disables
it), so expiry and reminders happen by themselves, also after ``POST /_local/clock``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from local import background
from local.api_stack import ApiStack
from local.server import LocalRequest, LocalResponse, local_route

SWEEP_FUNCTION = "ExpireClaimsFunction"
SCHEDULER_EVENT_PATH = Path(__file__).resolve().parent.parent / "events" / "expire_claims.json"
INTERVAL_VARIABLE = "LOCAL_SWEEP_SECONDS"
DEFAULT_INTERVAL_SECONDS = 60.0


def scheduler_event() -> dict[str, Any]:
    """What the Scheduler delivers to the function (the schedule's Input)."""
    try:
        event = json.loads(SCHEDULER_EVENT_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return event if isinstance(event, dict) else {}


def run_sweep(stack: ApiStack) -> Any:
    """One sweep through the real handler; its report."""
    return stack.invoke(SWEEP_FUNCTION, scheduler_event())


@local_route("POST", "/_local/sweep")
def sweep_now(stack: ApiStack, request: LocalRequest) -> LocalResponse:
    """Run the expiry sweep and reminders now -> the sweep's report {examined, expired, reminded, ...}."""
    response = LocalResponse.json(200, run_sweep(stack))
    response.log_as = f"POST /_local/sweep -> {SWEEP_FUNCTION}"
    return response


def interval_from_environment() -> float:
    """LOCAL_SWEEP_SECONDS: seconds between background sweeps, 0 for none. A bad value keeps the default."""
    return background.interval_from_environment(INTERVAL_VARIABLE, DEFAULT_INTERVAL_SECONDS, "sweeping")


def _sweep_and_report(stack: ApiStack) -> None:
    """One background sweep; a line when it changed something (a failure raises, for the loop to report)."""
    started = time.monotonic()
    report = run_sweep(stack)
    if isinstance(report, dict) and any(report.get(k) for k in ("expired", "reminded", "failed")):
        elapsed = (time.monotonic() - started) * 1000
        counts = ", ".join(f"{k} {report.get(k, 0)}" for k in ("expired", "reminded", "failed"))
        print(f"{time.strftime('%H:%M:%S')} background sweep -> {SWEEP_FUNCTION}: {counts} {elapsed:.0f}ms", flush=True)


def start_background(stack: ApiStack, interval: float | None = None) -> background.BackgroundLoop | None:
    """Start sweeping every LOCAL_SWEEP_SECONDS (or ``interval``); None when that is 0."""
    seconds = interval_from_environment() if interval is None else interval
    if seconds <= 0:
        return None
    loop = background.BackgroundLoop(
        "local-sweep", seconds, lambda: _sweep_and_report(stack), f"background sweep -> {SWEEP_FUNCTION} failed"
    )
    return loop.start()
