"""/_local/metrics on a running local stack (issue 15 item 5): a counter moves when, and only when, a function the
stack invokes prints a metric. The service's own emission lands separately, so the plumbing is driven by a tiny
function that emits through Powertools Metrics (tests/support/emf_function.py), put behind a real route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.lambda_runtime import LocalFunction
from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e

PARTNER = "p-contoso-partners"
EMITTING_ROUTE = ("GET", "/locations")  # served by the emitter in this stack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A stack of its own, in this process (after the autouse environment fixture, which it then overrides)."""
    from moto.moto_api._internal.models import moto_api_backend

    from local.stack import LocalStack

    moto_api_backend.reset()  # moto's backends outlive a stopped stack of this process
    monkeypatch.setenv("LOCAL_SWEEP_SECONDS", "0")
    monkeypatch.setenv("LOCAL_EVENTS_POLL_SECONDS", "0")
    with LocalStack(port=0) as running:
        yield running


def _emitter(stack: Any) -> None:
    """The emitter in place of the function behind GET /locations, as a deployment of new code would put it."""
    logical_id = next(r.route.function for r in stack.api_routes if r.route_key == "GET /locations")
    stack.functions[logical_id] = LocalFunction(
        logical_id, "tests/support", "emf_function.lambda_handler", memory=128, timeout=3
    )


def _board(client: StackClient) -> dict[str, Any]:
    answer = client.request("GET", "/_local/metrics.json")
    assert answer.status == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _added(board: dict[str, Any]) -> int:
    return int(next(step["value"] for step in board["funnel"] if step["step"] == "Added"))


def test_a_counter_moves_only_when_a_function_prints_a_metric(stack: Any) -> None:
    client = StackClient(stack.url)
    token = client.token(PARTNER, ["incentives_user"])
    before = _board(client)

    read = client.request("GET", "/engagements", token=token)  # a real read: it emits no funnel metric
    assert read.status == 200, read.text
    assert _added(_board(client)) == _added(before)

    _emitter(stack)
    for _ in range(2):
        emitted = client.request(*EMITTING_ROUTE, token=token)
        assert emitted.status == 200, emitted.text
    stack.invoke("PublishEventsFunction", {"Records": []})  # an event-driven invocation, nothing to emit

    after = _board(client)
    assert _added(after) == _added(before) + 2
    added = [c for c in after["counters"] if c["name"] == "CustomersAdded"]
    assert (
        sum(c["value"] for c in added) - sum(c["value"] for c in before["counters"] if c["name"] == "CustomersAdded")
        == 2
    )
    assert after["rejected_lines"] == 0


def _steps(board: dict[str, Any]) -> dict[str, int]:
    return {step["step"]: int(step["value"]) for step in board["funnel"]}


def _counted(board: dict[str, Any], name: str) -> int:
    return int(sum(c["value"] for c in board["counters"] if c["name"] == name))


def test_clicking_through_a_flow_moves_the_funnel_once_per_committed_step(stack: Any) -> None:
    """What a developer does with `make run`: the real functions' own EMF lines reach the board, a replayed
    Idempotency-Key counts nothing more."""
    client = StackClient(stack.url)
    token = client.token(PARTNER, ["incentives_user"])
    before = _board(client)
    body = {
        "friendly_name": "Fabrikam migration",
        "location_id": "1234567",
        "identifier": {"type": "domain", "value": "fabrikam.com"},
        "engagement_ids": ["e-azure-migrate"],
        "customer_contact": {"name": "Ana García", "email": "ana@fabrikam.com", "language": "es"},
        "partner_contact": {"name": "Sam Lee", "email": "sam@contoso-partners.com"},
    }
    key = {"Idempotency-Key": "metrics-flow-1"}
    for _ in range(2):  # the second is a replay
        added = client.request("POST", "/customers", body, token=token, headers=key)
        assert added.status == 201, added.text
    (claim,) = added.json()["claims"]
    consent = {"deal_size_usd": 25000, "disclaimer_accepted": True}
    asked = client.request("POST", f"/claims/{claim['claim_id']}/consent-requests", consent, token=token)
    assert asked.status == 200, asked.text

    after = _board(client)
    moved = {step: value - _steps(before)[step] for step, value in _steps(after).items()}
    assert moved == {"Added": 1, "Consent requested": 1, "Consent granted": 0, "Submitted": 0, "Completed": 0}
    assert _counted(after, "ConsentEmailsSent") - _counted(before, "ConsentEmailsSent") == 1
    assert after["rejected_lines"] == 0


def test_the_page_and_its_json_are_linked_from_the_local_index(stack: Any) -> None:
    client = StackClient(stack.url)

    page = client.request("GET", "/_local/metrics")
    as_json = client.request("GET", "/_local/metrics", headers={"Accept": "application/json"})
    index = client.request("GET", "/_local")

    assert page.status == 200
    assert page.content_type == "text/html"
    assert "<h1>Local metrics</h1>" in page.text
    assert 'href="/_local/metrics.json"' in page.text
    assert as_json.status == 200
    assert set(as_json.json()) == {"funnel", "beside_the_funnel", "counters", "lines", "rejected_lines"}
    paths = {route["path"] for route in index.json()["routes"]}
    assert {"/_local/metrics", "/_local/metrics.json"} <= paths
