"""Time as a dependency, so deadlines can be tested and travelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta


class OffsetClock:
    """The system clock shifted forward: the local stack's time travel."""

    def __init__(self, base: Clock | None = None) -> None:
        self._base = base or SystemClock()
        self.offset = timedelta()

    def now(self) -> datetime:
        return self._base.now() + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


def isoformat(at: datetime) -> str:
    """ISO 8601 UTC with a Z, second precision kept to microseconds for ordering."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
