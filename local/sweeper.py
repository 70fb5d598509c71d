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
import logging
import math
import os
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.server import LocalRequest, LocalResponse, local_route

if TYPE_CHECKING:
    from local.server import LocalStack

SWEEP_FUNCTION = "ExpireClaimsFunction"
SCHEDULER_EVENT_PATH = Path(__file__).resolve().parent.parent / "events" / "expire_claims.json"
INTERVAL_VARIABLE = "LOCAL_SWEEP_SECONDS"
DEFAULT_INTERVAL_SECONDS = 60.0

log = logging.getLogger("local.sweeper")


def scheduler_event() -> dict[str, Any]:
    """What the Scheduler delivers to the function (the schedule's Input)."""
    try:
        event = json.loads(SCHEDULER_EVENT_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return event if isinstance(event, dict) else {}


def run_sweep(stack: LocalStack) -> Any:
    """One sweep through the real handler; its report."""
    return stack.invoke(SWEEP_FUNCTION, scheduler_event())


@local_route("POST", "/_local/sweep")
def sweep_now(stack: LocalStack, request: LocalRequest) -> LocalResponse:
    """Run the expiry sweep and reminders now -> the sweep's report {examined, expired, reminded, ...}."""
    response = LocalResponse.json(200, run_sweep(stack))
    response.log_as = f"POST /_local/sweep -> {SWEEP_FUNCTION}"
    return response


def interval_from_environment() -> float:
    """LOCAL_SWEEP_SECONDS: seconds between background sweeps, 0 for none. A bad value keeps the default."""
    raw = os.environ.get(INTERVAL_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds < 0:
        log.warning(
            "%s=%r is not a number of seconds >= 0; sweeping every %.0f s",
            INTERVAL_VARIABLE,
            raw,
            DEFAULT_INTERVAL_SECONDS,
        )
        return DEFAULT_INTERVAL_SECONDS
    return seconds


class BackgroundSweep:
    """A daemon thread running the sweep every ``interval`` seconds until ``stop()``."""

    def __init__(self, stack: LocalStack, interval: float) -> None:
        self.stack = stack
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-sweep", daemon=True)

    def start(self) -> BackgroundSweep:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to end and wait for a sweep in progress to finish."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def run_once(self) -> None:
        started = time.monotonic()
        try:
            report = run_sweep(self.stack)
        except Exception:
            traceback.print_exc()
            print(f"{time.strftime('%H:%M:%S')} background sweep -> {SWEEP_FUNCTION} failed", flush=True)
            return
        if isinstance(report, dict) and any(report.get(k) for k in ("expired", "reminded", "failed")):
            elapsed = (time.monotonic() - started) * 1000
            counts = ", ".join(f"{k} {report.get(k, 0)}" for k in ("expired", "reminded", "failed"))
            print(
                f"{time.strftime('%H:%M:%S')} background sweep -> {SWEEP_FUNCTION}: {counts} {elapsed:.0f}ms",
                flush=True,
            )


def start_background(stack: LocalStack, interval: float | None = None) -> BackgroundSweep | None:
    """Start sweeping every LOCAL_SWEEP_SECONDS (or ``interval``); None when that is 0."""
    seconds = interval_from_environment() if interval is None else interval
    if seconds <= 0:
        return None
    return BackgroundSweep(stack, seconds).start()
