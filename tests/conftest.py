"""Fixtures shared by every tier: fake AWS credentials, tables from template.yaml, a fixed clock."""

from __future__ import annotations

import functools
from collections.abc import Iterator
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
    return FakeLambdaContext("test-function", aws_request_id="req-1")
