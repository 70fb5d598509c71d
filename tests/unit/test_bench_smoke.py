"""``make bench`` in miniature: ``python -m bench --smoke`` writes every section, with sane values.

Only shapes and invariants are checked here (counts, ratios that exist and are positive, zero errors):
never a timing threshold, since the smoke sizes make the figures meaningless and the machine is shared.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {
    "size",
    "cold_start",
    "snapstart",
    "tracing",
    "round_trips",
    "warm_overhead",
    "sweep",
    "load",
    "session",
    "scale",
}
REQUIRED = {
    "add_customer_1",
    "add_customer_3",
    "claim_customer",
    "consent_send",
    "consent_page_get",
    "consent_page_post",
    "customers_eligible",
    "customers_ineligible",
    "customers_complete",
    "claim_details",
    "sweep_expire",
    "sweep_remind",
}


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    # Its own environment: no coverage of the benchmark's processes, no AWS settings of the test run.
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "AWS_", "POWERTOOLS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--output", str(output)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    loaded: dict[str, Any] = json.loads(output.read_text())
    return loaded


def test_every_section_is_written_without_error(results: dict[str, Any]) -> None:
    assert results["meta"]["mode"] == "smoke"
    assert set(results["sections"]) == SECTIONS
    for name, section in results["sections"].items():
        assert "error" not in section, (name, section.get("error"))
        assert isinstance(section["met"], bool), name
        assert section["target"], name


def test_size_zips_every_function(results: dict[str, Any]) -> None:
    size = results["sections"]["size"]
    # every function of the template (12 since issue 16 grouped the nine read functions into one)
    from local.cloudformation import load_template

    template = load_template()
    functions = {k for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert {row["function"] for row in size["functions"]} == functions
    assert len(functions) >= 12
    for row in size["functions"]:
        assert 0 < row["zipped_bytes"] <= row["unzipped_bytes"] + 1024, row
        assert row["files"] >= 1
    assert positive(size["layers"]["SharedLayer"]["zipped_bytes"])


def test_cold_start_has_a_baseline_and_ratios(results: dict[str, Any]) -> None:
    cold = results["sections"]["cold_start"]
    assert positive(cold["baseline"]["median_ms"])
    assert cold["functions"]
    for row in cold["functions"]:
        assert positive(row["ratio"]), row
        assert positive(row["median_ms"]), row
        assert row["samples"] == cold["runs_per_function"]
        assert row["factories"], row
    floors = {floor["floor"]: floor for floor in cold["floors"]}  # the libraries alone (issue 16, item 4)
    for row in cold["functions"]:
        assert row["floor"] in floors, row
        assert positive(row["floor_ratio"]), row
    for floor in floors.values():
        assert floor["imports_ours"] == [], floor
        assert positive(floor["ratio"]), floor
        assert floor["samples"] == cold["runs_per_function"]


def test_snapstart_times_a_first_request_primed_and_not_against_warm_ones(results: dict[str, Any]) -> None:
    (row,) = results["sections"]["snapstart"]["scenarios"]  # the smoke's one scenario
    assert row["function"] == "AddCustomerFunction"
    assert row["primed_answers"] == {"POST /customers": 422}
    for variant in ("primed", "unprimed"):
        for figure in ("first_ms", "warm_ms", "ratio", "own_first_ms", "own_warm_ms", "own_ratio", "process_ratio"):
            assert positive(row[variant][figure]), (variant, figure, row)
    # Inside the clock the primed first request imports nothing: neither the function nor the harness around it.
    assert row["primed"]["first_imports"] == [], row["primed"]["first_imports"]


def test_the_snapstart_section_has_a_scenario_for_every_http_function() -> None:
    from bench.cold_start import PRIMED_FUNCTIONS
    from functions.table import FUNCTIONS

    assert set(PRIMED_FUNCTIONS.values()) == {f.logical_id for f in FUNCTIONS if f.routes}


def test_tracing_compares_each_function_with_and_without_the_tracer(results: dict[str, Any]) -> None:
    section = results["sections"]["tracing"]
    cold = {row["function"] for row in results["sections"]["cold_start"]["functions"]}
    assert {row["function"] for row in section["functions"]} == cold
    for row in section["functions"]:
        assert positive(row["ratio"]), row
        assert row["botocore_patched"] is True, row
        assert row["traced_modules"] > row["modules"], row
        assert row["samples"] == section["runs_per_function"]


def test_round_trips_count_every_named_operation_through_the_wiring_clients(results: dict[str, Any]) -> None:
    rows = {r["operation"]: r for r in results["sections"]["round_trips"]["operations"]}
    assert set(rows) >= REQUIRED
    for key in REQUIRED:
        row = rows[key]
        assert row["minimum"]["dynamodb"] > 0, row
        assert row["met"], row  # counts do not depend on the machine: a call more than the minimum is a regression
        assert row["calls_outside_wiring_clients"] == 0, row
        assert row["same_every_call"], row
    assert rows["consent_send"]["measured"]["sesv2"] == 1
    assert rows["claim_details"]["measured"]["dynamodb"] == 1


def test_warm_overhead_compares_each_handler_with_its_bare_calls(results: dict[str, Any]) -> None:
    rows = results["sections"]["warm_overhead"]["handlers"]
    assert rows
    for row in rows:
        assert positive(row["handler_ms"]), row
        assert positive(row["bare_ms"]), row
        assert positive(row["ratio"]), row
        assert row["aws_calls_per_call"] >= 1


def test_sweep_reads_the_due_claims_only_and_the_scan_reads_the_table(results: dict[str, Any]) -> None:
    sweep = results["sections"]["sweep"]
    assert sweep["due"] == sweep["claims"] // 100
    assert sweep["index"]["expired"] == sweep["due"]
    assert 1.0 <= sweep["index"]["items_read_per_due_claim"] <= 1.05
    assert sweep["scan"]["items_read"] >= sweep["claims"]
    assert positive(sweep["scan_to_index_items_ratio"])


def test_load_adds_distinct_customers_without_errors(results: dict[str, Any]) -> None:
    load = results["sections"]["load"]
    concurrent = load["concurrent"]
    assert concurrent["created"] >= 1
    assert concurrent["errors"] == 0, concurrent["statuses"]
    assert positive(concurrent["p50_ms"])
    assert positive(concurrent["p99_ms"])


def test_session_counts_the_functions_a_partner_meets_and_simulates_a_day(results: dict[str, Any]) -> None:
    section = results["sections"]["session"]
    rows = {row["layout"]: row for row in section["layouts"]}
    assert [rows[n]["cold_starts_when_idle"] for n in ("one per route", "today", "monolith")] == [9, 3, 1]
    assert section["met"] is True
    assert "cold_start" in section["cold_start_source"]  # priced by this run's own cold start section
    for row in rows.values():
        assert positive(row["idle_session_wait_ms"]), row
        for day in row["days"].values():
            assert day["requests"] == day["sessions"] * len(section["session"]), day
            assert 0 < day["cold_request_share"] <= 1, day


def test_scale_adds_and_requests_consent_for_every_customer_and_counts_units(results: dict[str, Any]) -> None:
    section = results["sections"]["scale"]
    assert section["added"] == section["customers"] == section["consent_emails"]
    assert section["failures"] == {}
    assert section["throttles"] == 0
    add, send = section["operations"]["add_customer"], section["operations"]["consent_send"]
    assert add["requests_per_call"] == {"BatchGetItem": 2, "TransactWriteItems": 1}
    assert add["items_written_per_call"] == 3  # claim, guard, counter
    assert positive(add["wcu_per_call"])
    assert positive(add["rcu_per_call"])
    assert positive(send["wcu_per_call"])
    assert add["hottest_keys_written"]["GSI1"]["count"] == section["customers"]  # one partner, one engagement
    assert 1 < add["hottest_keys_written"]["DueIndex"]["distinct"] <= 8  # the claims spread over the 8 shards
    assert section["drain"]
    assert all(positive(row["last_email_seconds"]) for row in section["drain"])
