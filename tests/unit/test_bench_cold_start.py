"""The cold start section's floor (issue 16, item 4): the design card's libraries alone, as each function needs them,
so that a function's ratio to the floor is our code's own share."""

from __future__ import annotations

from bench import cold_start
from bench.common import template_functions
from local.cloudformation import load_template


def test_each_function_has_a_floor_of_its_libraries_and_clients_without_our_code() -> None:
    template = load_template()
    functions = [f for f in template_functions(template) if f.logical_id in {"ReadsFunction", "PublishEventsFunction"}]
    _, measured = cold_start.samples_for(template, functions)

    floors = cold_start.floor_samples(template, functions, measured, jobs=1)

    assert floors["ReadsFunction"].name == "floor: HTTP, dynamodb"  # the resolver, and the one client it creates
    assert floors["PublishEventsFunction"].name == "floor: events"  # no resolver; only the EventBridge client
    for sample in floors.values():
        _, found = cold_start._run(sample)
        assert found["ours"] == []  # nothing of mci or functions: the libraries alone
        assert found["cpu_ms"] > 0
    http, event = (cold_start._run(floors[f])[1]["modules"] for f in ("ReadsFunction", "PublishEventsFunction"))
    assert http > event  # the HTTP floor imports Powertools' event handler and its OpenAPI validation


def test_another_checkout_is_sampled_with_its_own_template_and_code() -> None:
    """``--compare``: a before/after in the same rounds (issue 15's cold start ratios before and after)."""
    import json
    from pathlib import Path

    tree = Path(cold_start.ROOT)
    samples, functions = cold_start.compared_samples(tree, ["AddCustomerFunction"])

    assert [f.logical_id for f in functions] == ["AddCustomerFunction"]
    (sample,) = samples
    assert sample.name == f"{tree} AddCustomerFunction"  # never the name of this checkout's own sample
    assert json.loads(sample.arguments[0]) == [str(tree / "shared"), str(tree)]  # its code first on sys.path
    assert sample.arguments[1] == "functions.add_customer.app"
