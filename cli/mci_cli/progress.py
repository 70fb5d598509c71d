"""A progress bar on stderr, drawn only when stderr is a terminal (quiet in pipes, logs and tests)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
REDRAW_SECONDS = 0.1


class Progress:
    """``label [#####-----]  12/40  30%``; with no total, a running count."""

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn_at = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and (now - self._drawn_at >= REDRAW_SECONDS or self.done == self.total):
            self._drawn_at = now
            self._draw()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        if self.total:
            filled = min(WIDTH, WIDTH * self.done // self.total)
            bar = "#" * filled + "-" * (WIDTH - filled)
            count = f"{self.done:>{len(str(self.total))}}/{self.total}"
            text = f"{self.label} [{bar}] {count} {100 * self.done // self.total:3d}%"
        else:
            text = f"{self.label} {self.done}"
        self.stream.write("\r" + text)
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
