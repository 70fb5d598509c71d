"""Pytest plugin: at the end of the run, one line per test tier that was skipped, with its reason.

A tier reports itself by skipping with a reason of the form ``"<Name> tier skipped: <why>"`` (for
example ``"DynamoDB Local tier skipped: java not found ..."``). ``-ra`` already lists every skip in
the short summary; this section groups them per tier so a skipped tier cannot go unnoticed among
ordinary skips. Wired from ``tests/conftest.py`` with ``pytest_plugins = ["tests.conftest_tiers"]``.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

TIER_SKIP = re.compile(r"(?P<tier>[^:]+ tier) skipped: (?P<why>.+)", re.DOTALL)


def tier_skips(reports: list[Any]) -> Counter[tuple[str, str]]:
    """(tier, reason) -> number of tests skipped for it."""
    found: Counter[tuple[str, str]] = Counter()
    for report in reports:
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            message = str(longrepr[2])
        else:
            continue
        match = TIER_SKIP.search(message.removeprefix("Skipped: "))
        if match:
            found[(match.group("tier").strip(), match.group("why").strip())] += 1
    return found


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skips = tier_skips(terminalreporter.stats.get("skipped", []))
    if not skips:
        return
    terminalreporter.write_sep("=", "test tiers skipped", yellow=True, bold=True)
    for (tier, why), count in sorted(skips.items()):
        terminalreporter.write_line(f"{tier} skipped ({count} tests): {why}", yellow=True)
