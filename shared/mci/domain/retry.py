"""Retry on conflict: every conditional write that re-reads and tries again does so here, under one policy.

The policy comes from the settings (``CLAIM_WRITE_ATTEMPTS``); the pause is a collaborator, so tests never sleep.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from mci.domain.ports import ConcurrentChange

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times a write is tried, and the jittered pause after each failed try (seconds)."""

    attempts: int = 12
    shortest_pause: float = 0.005
    pause_step: float = 0.02  # the longest pause after try n (from 0) is ``pause_step * (n + 1)``

    def pause(self, attempt: int, draw: Callable[[float, float], float] = random.uniform) -> float:
        return draw(self.shortest_pause, max(self.shortest_pause, self.pause_step * (attempt + 1)))


DEFAULT_RETRY = RetryPolicy()


def retry_on_conflict(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    *,
    also: tuple[type[Exception], ...] = (),
) -> T:
    """``attempt()``'s result, tried at most ``policy.attempts`` times while it raises ``ConcurrentChange``
    (or one of ``also``, e.g. a throttled write that is safe to repeat).

    Each failed try is followed by its pause, the last one too: a caller that gives up then answers after the
    contention had its time to clear. The last failure is re-raised for the caller to translate; any other
    error propagates at once. ``attempt`` re-reads what it writes on (a closure may keep what it learnt).
    """
    retried: tuple[type[Exception], ...] = (ConcurrentChange, *also)
    for tried in range(policy.attempts):
        try:
            return attempt()
        except retried:
            sleep(policy.pause(tried))
            if tried == policy.attempts - 1:
                raise
    raise ValueError(f"a retry policy needs at least one attempt, not {policy.attempts}")
