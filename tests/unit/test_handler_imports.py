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


# Issue 16 item 4: what a function imported at its cold start (its handler module, then the wiring factories it calls)
# though none of its routes uses it; each cut stays cut. The read routes' views and their domain modules (the Customers
# page, attention items) were imported by every HTTP function through mci.http.schemas; adding customers (nominations,
# pricing, the lookups use case) by every function that called wiring.services(); the commands module with it.
READ_VIEWS = frozenset({"mci.domain.customers_page", "mci.domain.attention"})
NOMINATIONS = frozenset({"mci.domain.nomination", "mci.domain.pricing", "mci.domain.lookups"})
COMMANDS = frozenset({"mci.domain.commands"})
# The X-Ray SDK comes with the Tracer, created at the first traced invocation (mci.tracing), never at start.
TRACER = frozenset({"aws_xray_sdk"})
NOT_USED: dict[str, frozenset[str]] = {
    "ReadsFunction": TRACER,
    "AddCustomerFunction": READ_VIEWS | TRACER,
    "ClaimCustomerFunction": READ_VIEWS | TRACER,
    "LoadReferenceDataFunction": READ_VIEWS | NOMINATIONS | COMMANDS | TRACER,
    "RequestConsentFunction": READ_VIEWS | NOMINATIONS | TRACER,
    "ConsentPageFunction": READ_VIEWS | NOMINATIONS | COMMANDS | TRACER,
    "SubmitClaimFunction": READ_VIEWS | NOMINATIONS | TRACER,
    "CancelClaimFunction": READ_VIEWS | NOMINATIONS | TRACER,
    "ReviewClaimFunction": READ_VIEWS | NOMINATIONS | TRACER,
    "ExpireClaimsFunction": NOMINATIONS | COMMANDS | TRACER,
    "PublishEventsFunction": NOMINATIONS | COMMANDS | TRACER,
    "SesFeedbackFunction": NOMINATIONS | COMMANDS | TRACER,
}


def test_every_function_of_the_template_is_listed() -> None:
    from bench.common import template_functions
    from local.cloudformation import load_template

    assert {f.logical_id for f in template_functions(load_template())} == set(NOT_USED)


@pytest.mark.parametrize("logical_id", sorted(NOT_USED))
def test_a_function_starts_without_what_its_routes_never_use(logical_id: str) -> None:
    """The bench's cold start sample (with the function's template environment), then every module it holds."""
    from bench import cold_start
    from bench.common import template_functions
    from local.cloudformation import load_template

    template = load_template()
    function = [f for f in template_functions(template) if f.logical_id == logical_id]
    _, (sample,) = cold_start.samples_for(template, function)
    listing = cold_start.Sample(
        sample.name, sample.script + "print(json.dumps(sorted(sys.modules)))\n", sample.arguments, sample.environment
    )

    _, modules = cold_start._run(listing)

    assert sorted(NOT_USED[logical_id] & {m.split(".")[0] if m.startswith("aws_xray") else m for m in modules}) == []
