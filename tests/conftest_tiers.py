"""Pytest plugin: a skipped test tier shows up as one plain line at the end of the run.

A tier reports itself by skipping with a reason of the form ``"<Name> tier skipped: <why>"``, for example
``"DynamoDB Local tier skipped: java not found (...)"``. Two hooks make that visible:

- ``pytest_runtest_makereport`` gives every such skip the tier's directory as its location, so ``-ra``
  (in ``addopts``) folds them into one line: ``SKIPPED [22] tests/dynamodb_local: DynamoDB Local tier
  skipped: java not found (...)`` instead of one line per test;
- ``pytest_terminal_summary`` adds a "test tiers skipped" section listing each skipped tier once.

Wiring: ``tests/conftest.py`` declares ``pytest_plugins = ["tests.conftest_tiers"]`` (both hooks, every
tier). A tier's own conftest may also import ``pytest_runtest_makereport`` from here so its skips fold
even without that line; folding twice is harmless.

``in_ci()`` is the one switch every tier reads: in CI (``CI`` is ``true``, ``1`` or ``yes``, any case) a
tier whose tools are missing fails instead of skipping, and the property suites run their full count.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Generator, Sequence
from typing import Any

import pytest

CI_VALUES = frozenset({"true", "1", "yes"})


def in_ci() -> bool:
    """True in CI (``CI=true``, ``1`` or ``yes``): a tier that cannot run fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in CI_VALUES


TIER_SKIP = re.compile(r"^(?:Skipped: )?(?P<tier>[^:\n]+ tier) skipped: (?P<why>.+)$", re.DOTALL)
_REPORTED = pytest.StashKey[bool]()


def tier_of(report: pytest.TestReport | pytest.CollectReport) -> tuple[str, str] | None:
    """(tier, why) when the report is a tier's skip, else None."""
    longrepr = report.longrepr
    if not report.skipped or not isinstance(longrepr, tuple) or len(longrepr) != 3:
        return None
    match = TIER_SKIP.match(str(longrepr[2]))
    return (match.group("tier").strip(), match.group("why").strip()) if match else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if tier_of(report) is not None and isinstance(report.longrepr, tuple):
        report.longrepr = (str(item.path.parent), None, str(report.longrepr[2]))
    return report


def tier_skips(reports: Sequence[Any]) -> Counter[tuple[str, str]]:
    """(tier, why) -> number of tests skipped for it."""
    found: Counter[tuple[str, str]] = Counter()
    for report in reports:
        tier = tier_of(report) if isinstance(report, pytest.TestReport | pytest.CollectReport) else None
        if tier is not None:
            found[tier] += 1
    return found


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if config.stash.get(_REPORTED, False):
        return
    config.stash[_REPORTED] = True
    skips = tier_skips(terminalreporter.stats.get("skipped", []))
    if not skips:
        return
    terminalreporter.write_sep("=", "test tiers skipped", yellow=True, bold=True)
    for (tier, why), count in sorted(skips.items()):
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(f"{tier} skipped ({count} {tests}): {why}", yellow=True)
