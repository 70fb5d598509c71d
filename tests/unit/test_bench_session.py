"""The session section's logic: which functions a partner session meets, and the simulated day (bench/session.py)."""

from __future__ import annotations

from dataclasses import replace

from bench import session
from bench.session import MONOLITH, Fleet, Step, Traffic

MINUTE = 60.0
ONE_COLD = 500.0


def cost(_function: str) -> float:
    return ONE_COLD


def test_a_session_whose_routes_all_map_to_one_function_meets_one_cold_start() -> None:
    monolith = session.layouts()["monolith"]
    assert set(session.session_functions(monolith)) == {MONOLITH}
    assert session.cold_starts_when_idle(monolith) == 1


def test_the_session_on_the_deployed_table_meets_at_most_three_functions_where_one_per_route_met_nine() -> None:
    """Issue 16 item 2: measured on template.yaml's own routes, not on a hypothetical layout."""
    today = session.layouts()["today"]
    assert today == session.today()
    assert session.cold_starts_when_idle(today) <= session.TARGET_COLD_STARTS
    assert session.cold_starts_when_idle(session.ONE_PER_ROUTE) == 9
    assert session.resolve(today, "GET", "/engagements/e-azure-migrate/customers") == session.READS
    assert session.resolve(today, "POST", "/payment-quotes") == session.READS
    assert session.resolve(today, "POST", "/claims/c-1/consent-requests") == "RequestConsentFunction"
    assert session.resolve(today, "POST", "/customers") == "AddCustomerFunction"


def test_every_route_of_the_template_has_a_function_in_every_layout() -> None:
    today = session.today()
    for name, layout in session.layouts().items():
        assert set(layout) == set(today), name


def test_an_environment_idle_longer_than_the_reclaim_time_is_gone() -> None:
    fleet = Fleet(reclaim_seconds=7 * MINUTE)
    assert fleet.call("F", at=0.0, service_seconds=0.1, cold_seconds=0.5) is True
    assert fleet.call("F", at=6 * MINUTE, service_seconds=0.1, cold_seconds=0.5) is False
    # idle from 6 min + 0.1 s: still warm at 13 min, reclaimed by 13 min 1 s
    assert fleet.call("F", at=13 * MINUTE, service_seconds=0.1, cold_seconds=0.5) is False
    assert fleet.call("F", at=20 * MINUTE + 1, service_seconds=0.1, cold_seconds=0.5) is True
    assert fleet.peak == 1


def test_two_calls_at_once_need_two_environments_and_other_functions_their_own() -> None:
    fleet = Fleet(reclaim_seconds=7 * MINUTE)
    assert fleet.call("F", at=0.0, service_seconds=1.0, cold_seconds=0.5) is True
    assert fleet.call("F", at=1.0, service_seconds=1.0, cold_seconds=0.5) is True  # the first is still busy
    assert fleet.call("G", at=5.0, service_seconds=1.0, cold_seconds=0.5) is True
    assert fleet.call("F", at=5.0, service_seconds=1.0, cold_seconds=0.5) is False
    assert fleet.peak == 3


def test_without_reclaim_grace_every_call_waits_and_with_a_day_each_environment_starts_once() -> None:
    steps = (
        Step("GET", "/engagements", "a", 30),
        Step("GET", "/locations", "b", 30),
        Step("GET", "/engagements", "c", 0),
    )
    layout = session.layouts()["today"]
    never = session.simulate(layout, Traffic("t", sessions_per_day=200, reclaim_minutes=0), cost, steps)
    assert never.requests == never.cold_requests == len(never.session_waits_ms) * 3
    kept = session.simulate(layout, Traffic("t", sessions_per_day=200, reclaim_minutes=24 * 60), cost, steps)
    assert kept.requests == never.requests
    assert kept.cold_requests == kept.peak_environments  # an environment, once started, is never reclaimed
    assert max(kept.session_waits_ms) <= 2 * ONE_COLD


def test_the_day_is_reproducible_and_fewer_functions_mean_fewer_cold_requests() -> None:
    quiet = Traffic("quiet", sessions_per_day=300)
    layouts = session.layouts()
    first = session.simulate(layouts["today"], quiet, cost).figures()
    assert session.simulate(layouts["today"], quiet, cost).figures() == first
    assert first["sessions"] == sum(round(300 * w / sum(session.HOURLY_PROFILE)) for w in session.HOURLY_PROFILE)
    assert first["requests"] == first["sessions"] * len(session.SESSION)
    shares = [session.simulate(layouts[n], quiet, cost).figures()["cold_request_share"] for n in layouts]
    assert shares == sorted(shares, reverse=True)  # one per route, today (grouped), monolith
    assert session.simulate(layouts["today"], replace(quiet, seed=17), cost).figures() != first


def test_cold_start_costs_come_from_the_runs_measurement_or_the_documented_constant() -> None:
    grouped = session.today()
    documented, source = session.cold_start_costs(grouped, None)
    assert documented(session.READS) == session.DOCUMENTED_COLD_START_MS
    assert "docs/performance.md" in source
    measured = {session.READS: 700.0, "AddCustomerFunction": 600.0}
    priced, source = session.cold_start_costs(grouped, measured)
    assert priced(session.READS) == 700.0
    assert priced("AddCustomerFunction") == 600.0
    # a layout's function that was not measured costs what its dearest member costs today
    per_route, _ = session.cold_start_costs(session.ONE_PER_ROUTE, measured)
    assert per_route("CustomersPageFunction") == 700.0
    assert per_route("RequestConsentFunction") == session.DOCUMENTED_COLD_START_MS
    assert "cold_start" in source


def test_the_section_reports_every_layout_and_prices_the_idle_session() -> None:
    cold_start = {"functions": [{"function": "AddCustomerFunction", "cpu_ms": 600.0}]}
    found = session.measure(cold_start, traffic=(Traffic("tiny", sessions_per_day=24),))
    rows = {row["layout"]: row for row in found["layouts"]}
    assert [rows[n]["cold_starts_when_idle"] for n in ("one per route", "today", "monolith")] == [9, 3, 1]
    assert rows["one per route"]["idle_session_wait_ms"] == 8 * session.DOCUMENTED_COLD_START_MS + 600.0
    assert rows["today"]["idle_session_wait_ms"] == 2 * session.DOCUMENTED_COLD_START_MS + 600.0
    assert found["met"] is True  # the deployed table's session: 3 functions
    assert rows["monolith"]["days"]["tiny"]["requests"] > 0
