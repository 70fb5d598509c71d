"""Handlers are thin (STYLE 1, 2): they know requests, commands and events, never how the table stores items."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each function's handler, and the route modules the grouped read function includes (issue 16).
HANDLERS = sorted([*ROOT.glob("functions/*/app.py"), *ROOT.glob("shared/mci/http/reads/*.py")])
# Where item layouts live: keys, attribute names, and the parsers of stored items.
ITEM_LAYOUTS = frozenset({"mci.adapters.dynamodb_items", "mci.adapters.dynamodb_claims"})


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return modules | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def test_every_function_is_checked() -> None:
    assert len(HANDLERS) >= 20
    assert ROOT / "functions/publish_events/app.py" in HANDLERS
    assert ROOT / "shared/mci/http/reads/customers_page.py" in HANDLERS


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_handler_reads_stored_items_itself(handler: Path) -> None:
    """Issue 13: the stream publisher decoded the table's images with the claims adapter's item parsers."""
    assert not imported_modules(handler) & ITEM_LAYOUTS


def test_a_function_imports_no_use_case_it_never_calls() -> None:
    """Issue 16 item 4: the stream publisher only publishes; adding customers (nominations, pricing, lookups) is
    no part of its cold start."""
    import subprocess
    import sys

    script = (
        "import sys; import functions.publish_events.app; print(sorted(m for m in sys.modules if m in NEVER))".replace(
            "NEVER", repr({"mci.domain.nomination", "mci.domain.pricing", "mci.adapters.dynamodb_lookups"})
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'shared'}:{ROOT}", "AWS_DEFAULT_REGION": "us-east-1", "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
