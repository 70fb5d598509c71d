"""The one background loop of the local stack (the events feed's poll and the expiry sweep run on it)."""

from __future__ import annotations

import threading

import pytest

from local.background import BackgroundLoop, interval_from_environment


def test_a_failing_run_is_reported_and_the_loop_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    runs: list[int] = []
    second = threading.Event()

    def work() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        second.set()

    loop = BackgroundLoop("local-test-loop", 0.01, work, "test loop: the run failed").start()
    try:
        assert second.wait(5), "the loop stopped after a failing run"
    finally:
        loop.stop(timeout=5)
    assert not loop.running
    assert not any(thread.name == "local-test-loop" for thread in threading.enumerate())
    captured = capsys.readouterr()
    assert "RuntimeError: first run fails" in captured.err
    assert "test loop: the run failed" in captured.out


def test_stop_before_the_first_interval_runs_nothing() -> None:
    runs: list[None] = []
    loop = BackgroundLoop("local-test-idle", 60, lambda: runs.append(None), "never").start()
    loop.stop(timeout=5)
    assert (loop.running, runs) == (False, [])


@pytest.mark.parametrize(("value", "seconds"), [("", 7.0), ("0", 0.0), ("0.25", 0.25), ("-1", 7.0), ("inf", 7.0)])
def test_the_interval_comes_from_its_variable(monkeypatch: pytest.MonkeyPatch, value: str, seconds: float) -> None:
    monkeypatch.setenv("LOCAL_TEST_SECONDS", value)
    assert interval_from_environment("LOCAL_TEST_SECONDS", 7.0, "testing") == seconds
