"""Work the local stack repeats on its own (the events feed's poll, the expiry sweep): one daemon thread
per loop, its interval from an environment variable."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import traceback
from collections.abc import Callable

log = logging.getLogger("local.background")


def interval_from_environment(variable: str, default: float, doing: str) -> float:
    """Seconds between runs from ``variable``, 0 for none. A bad value keeps ``default`` (and says so)."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds < 0:
        log.warning("%s=%r is not a number of seconds >= 0; %s every %.0f s", variable, raw, doing, default)
        return default
    return seconds


class BackgroundLoop:
    """A daemon thread named ``name`` calling ``work`` every ``interval`` seconds until ``stop()``.

    A run that raises is reported (traceback, then ``failure`` on one line) and the loop goes on.
    """

    def __init__(self, name: str, interval: float, work: Callable[[], object], failure: str) -> None:
        self.interval = interval
        self._work = work
        self._failure = failure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> BackgroundLoop:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to end and wait up to ``timeout`` seconds for a run in progress to finish."""
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
        try:
            self._work()
        except Exception:
            traceback.print_exc()
            print(f"{time.strftime('%H:%M:%S')} {self._failure}", flush=True)
