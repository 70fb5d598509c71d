"""The one retry-on-conflict helper (issue 13, item 3): tries, pauses, gives up, and leaves other errors alone."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mci.domain.errors import DependencyUnavailable
from mci.domain.ports import ConcurrentChange
from mci.domain.retry import DEFAULT_RETRY, RetryPolicy, retry_on_conflict
from mci.settings import Settings

POLICY = RetryPolicy(attempts=4, shortest_pause=0.01, pause_step=0.05)


class Attempts:
    """Fails the first ``failures`` tries with ``error``, then answers ``done``."""

    def __init__(self, failures: int, error: type[Exception] = ConcurrentChange) -> None:
        self.failures = failures
        self.error = error
        self.tries = 0
        self.raised: list[Exception] = []

    def __call__(self) -> str:
        self.tries += 1
        if self.tries <= self.failures:
            error = self.error(f"try {self.tries}")
            self.raised.append(error)
            raise error
        return "done"


def test_a_write_that_succeeds_is_tried_once_and_never_waits() -> None:
    pauses: list[float] = []
    attempt = Attempts(failures=0)
    assert retry_on_conflict(attempt, POLICY, pauses.append) == "done"
    assert (attempt.tries, pauses) == (1, [])


def test_conflicts_are_tried_again_after_a_pause() -> None:
    pauses: list[float] = []
    attempt = Attempts(failures=3)
    assert retry_on_conflict(attempt, POLICY, pauses.append) == "done"
    assert attempt.tries == 4
    assert len(pauses) == 3


def test_it_gives_up_after_the_policys_attempts_and_re_raises_the_last_conflict() -> None:
    pauses: list[float] = []
    attempt = Attempts(failures=99)
    with pytest.raises(ConcurrentChange) as raised:
        retry_on_conflict(attempt, POLICY, pauses.append)
    assert attempt.tries == POLICY.attempts
    assert raised.value is attempt.raised[-1]
    assert len(pauses) == POLICY.attempts  # the last conflict waits too: the caller's 503 comes after it


def test_the_pauses_back_off() -> None:
    pauses: list[float] = []
    with pytest.raises(ConcurrentChange):
        retry_on_conflict(Attempts(failures=99), POLICY, pauses.append)
    for tried, pause in enumerate(pauses):
        assert POLICY.shortest_pause <= pause <= POLICY.pause_step * (tried + 1)
    longest = [POLICY.pause(tried, draw=lambda low, high: high) for tried in range(POLICY.attempts)]
    assert longest == sorted(longest)
    assert longest[-1] == pytest.approx(POLICY.pause_step * POLICY.attempts)
    assert {POLICY.pause(tried, draw=lambda low, high: low) for tried in range(4)} == {POLICY.shortest_pause}


@pytest.mark.parametrize("error", [ValueError, DependencyUnavailable])
def test_other_errors_are_not_retried(error: type[Exception]) -> None:
    pauses: list[float] = []
    attempt = Attempts(failures=1, error=error)
    with pytest.raises(error):
        retry_on_conflict(attempt, POLICY, pauses.append)
    assert (attempt.tries, pauses) == (1, [])


def test_a_caller_may_retry_a_throttle_too() -> None:
    pauses: list[float] = []
    attempt = Attempts(failures=2, error=DependencyUnavailable)
    assert retry_on_conflict(attempt, POLICY, pauses.append, also=(DependencyUnavailable,)) == "done"
    assert (attempt.tries, len(pauses)) == (3, 2)


def test_the_policy_is_one_setting() -> None:
    assert Settings().conflict_retry == DEFAULT_RETRY
    assert Settings.from_environ({"CLAIM_WRITE_ATTEMPTS": "7"}).conflict_retry.attempts == 7
    with pytest.raises(ValidationError):
        Settings.from_environ({"CLAIM_WRITE_ATTEMPTS": "0"})
