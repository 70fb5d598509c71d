"""The browser tier: headless Chromium (Debian's ``chromium`` package) driven by Python playwright.

Chromium comes from apt (``.ci/run`` installs it), never from ``playwright install``: playwright launches
the executable ``shutil.which("chromium")`` finds, once per test process (``browser``), with flags that keep it
off the network; each test gets fresh contexts of its own (``new_context``: own cookies and storage).
Without chromium or playwright the tier is skipped with one plain reason (folded into one line by
tests/conftest_tiers.py); with ``CI=true`` the same situation fails instead.

The stack under test runs in this process (``LocalStack(port=0)``), one per test module. It owns
``os.environ`` while it runs, so the repository-wide ``aws_environment`` fixture (which resets AWS settings
around every test) is replaced here by one that leaves the stack's environment alone.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from local.stack import LocalStack
from tests.conftest_tiers import (
    in_ci,
    pytest_runtest_makereport,  # noqa: F401 - folds this tier's skips into one line
)
from tests.e2e.conftest import StackClient

if TYPE_CHECKING:
    from playwright.sync_api import Playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"  # git-ignored
TIER = "browser tier"
# --headless and --no-sandbox as in docs/TOOLING (each test's context has its own storage); the rest stop
# Chromium's own background traffic (updates, sync, QUIC probes).
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def required() -> bool:
    """In CI (``CI=true``) the tier must run: a missing browser fails instead of skipping."""
    return in_ci()


def unavailable(why: str) -> NoReturn:
    if required():
        pytest.fail(f"{TIER} failed: {why} (CI=true: this tier must run)", pytrace=False)
    pytest.skip(f"{TIER} skipped: {why}")


@pytest.fixture(autouse=True)
def aws_environment() -> None:
    """Replaces the repository-wide fixture: the in-process stack set the environment and restores it."""


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        unavailable("chromium not found (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def playwright(chromium_executable: str) -> Iterator[Playwright]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright not found (pip install -r requirements-dev.txt)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """The local stack in this process, on a free loopback port."""
    with LocalStack(port=0) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> StackClient:
    return StackClient(stack.url)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser(playwright: Playwright, chromium_executable: str) -> Iterator[Any]:
    """One headless Chromium for the whole test process; each test gets its own context (``new_context``)."""
    launched = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=LAUNCH_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def new_context(browser: Any) -> Iterator[Any]:
    """``new_context(**context_options)`` -> a BrowserContext (its own cookies and storage) on the process's one
    Chromium, closed after the test. Starting a Chromium per test cost about a second each."""
    contexts: list[Any] = []

    def start(**options: Any) -> Any:
        context = browser.new_context(**options)
        contexts.append(context)
        return context

    yield start
    for context in contexts:
        context.close()


def slow_network(page: Any, latency_ms: int) -> None:
    """Chromium's own network emulation (DevTools): every request of the page waits `latency_ms` more."""
    session = page.context.new_cdp_session(page)
    session.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": latency_ms, "downloadThroughput": -1, "uploadThroughput": -1},
    )
