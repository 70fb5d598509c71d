"""Fixtures shared by every tier: fake AWS credentials, tables from template.yaml, a fixed clock."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session
import pytest

from local.aws_env import fake_aws_environment
from local.lambda_runtime import FakeLambdaContext
from mci import wiring
from mci.domain.clock import FixedClock
from mci.http import idempotency
from tests.support.reference import NOW

pytest_plugins = ["tests.conftest_tiers"]

# Every test starts with fresh clients (``wiring.reset()``), and every new botocore Session builds a new
# data loader that parses endpoints.json and the service models again: about 0.2 s of JSON per test, most
# of the handler tier's setup. One loader for the process keeps botocore's own per-loader caches across
# sessions, as one long-lived Session would; what tests isolate (clients, credentials, moto state) is
# untouched.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)  # type: ignore[attr-defined]

# The modules with the longest tests (docs/testing.md, "Where the suite's time goes"), longest test first: they
# run first. pytest-xdist's worksteal gives each worker a consecutive share of the collection and lets a worker
# that ran out take the second half of another's queue, from its end. With the long tests at the front, what
# is left to take at the end of the run is short tests, so no worker idles while another finishes a long one;
# a module's tests stay together (its module fixtures: the stacks of the e2e modules, Chromium, DynamoDB
# Local). A module not listed runs in its usual place, after these.
LONGEST_FIRST = (
    "tests/moto/test_stateful.py",  # four shards of the state machine, each the longest test of the suite
    "tests/moto/test_sweep.py",  # the sweep over ten thousand claims
    "tests/moto/test_faults.py",
    "tests/e2e/test_local_stack_races.py",
    "tests/unit/test_bench_smoke.py",
    "tests/e2e/test_generated_clients.py",
    "tests/e2e/test_cli.py",
    "tests/dynamodb_local/test_claim_repository.py",
    "tests/browser/test_wizards.py",
    "tests/browser/test_web_app.py",
    "tests/e2e/test_local_stack_server.py",
    "tests/unit/test_template_security.py",  # checkov
    "tests/e2e/test_api_fuzzing.py",
)
ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The LONGEST_FIRST modules first, in its order; every other test keeps its place after them."""
    rank = {path: number for number, path in enumerate(LONGEST_FIRST)}

    def place(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(ROOT).as_posix(), len(LONGEST_FIRST))

    items.sort(key=place)  # stable: the order within a module and among the others is pytest's


FAKE_ENVIRONMENT = {
    **fake_aws_environment(),
    "TABLE_NAME": "ClaimsTable",
    "IDEMPOTENCY_TABLE_NAME": "IdempotencyTable",
    "POWERTOOLS_SERVICE_NAME": "mci-customers",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "MciCustomers",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "CURSOR_SIGNING_KEY": "tests-cursor-signing-key-not-a-secret",
}


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Never reach AWS: fake credentials and region, fresh clients and settings per test."""
    for name, value in FAKE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    wiring.reset()
    idempotency.reset()
    yield
    wiring.reset()
    idempotency.reset()


@pytest.fixture
def clock() -> Iterator[FixedClock]:
    fixed = FixedClock(NOW)
    wiring.use_clock(fixed)
    yield fixed
    from mci.domain.clock import SystemClock

    wiring.use_clock(SystemClock())


@pytest.fixture
def lambda_context() -> Any:
    # The sweep's timeout (functions/table.py): it stops sending SWEEP_SEND_MARGIN_SECONDS before its end.
    return FakeLambdaContext("test-function", timeout_seconds=300, aws_request_id="req-1")
