"""A monotonic clock and a sleep that only move the clock: pacing tested without waiting."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeTimer:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
