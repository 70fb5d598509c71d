"""One CI switch for every tier (tests/conftest_tiers.py): in CI a tier that cannot run fails, never skips."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from local.cloudformation import load_template
from tests.conftest_tiers import in_ci
from tests.support import dynamodb_local, hypothesis_profiles
from tests.unit import test_template_security

TESTS = Path(__file__).resolve().parents[1]
READS_CI = re.compile(r"""environ(?:\.get\(|\[)\s*["']CI["']|getenv\(\s*["']CI["']""")


def checkov_without_checkov(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """How the checkov tier ends when checkov is not installed: "failed" or "skipped", and why."""
    monkeypatch.setattr(test_template_security, "CHECKOV", tmp_path / "no-checkov")
    try:
        test_template_security.test_checkov_finds_no_failed_check(load_template())
    except pytest.fail.Exception as failed:
        return f"failed: {failed}"
    except pytest.skip.Exception as skipped:
        return f"skipped: {skipped}"
    return "ran"


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE", " Yes "])
def test_every_tier_counts_the_same_values_as_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    monkeypatch.setenv("CI", value)
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    assert in_ci()
    assert dynamodb_local.required()
    assert hypothesis_profiles._chosen() == "ci"
    assert checkov_without_checkov(monkeypatch, tmp_path).startswith("failed: checkov missing in CI")


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off"])
def test_outside_ci_a_missing_tool_skips_its_tier(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    monkeypatch.setenv("CI", value)
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    assert not in_ci()
    assert not dynamodb_local.required()
    assert hypothesis_profiles._chosen() == "dev"
    assert checkov_without_checkov(monkeypatch, tmp_path).startswith("skipped: checkov tier skipped")


def test_no_tier_reads_ci_but_through_the_one_switch() -> None:
    readers = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path.name != "conftest_tiers.py" and READS_CI.search(path.read_text(encoding="utf-8"))
    ]
    assert readers == []
