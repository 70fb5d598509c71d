"""Business metrics through the real handlers on moto: an Idempotency-Key replay and a redelivered SES event
count nothing more, and what the functions print is standard CloudWatch EMF (docs/operations.md#business-metrics)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from mci import wiring
from mci.adapters.memory import MemoryMetrics
from mci.domain.metrics import METRICS
from tests.moto.test_ses_feedback import deliver, feedback, requested
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.reference import add_customer_body

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

FIXED = (("PaymentType", "fixed"),)


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> LifecycleApi:
    return lifecycle_api(lambda_context)


@pytest.fixture
def metrics(seeded: DynamoDBClient) -> Iterator[MemoryMetrics]:
    counted = MemoryMetrics()
    wiring.use_metrics(counted)
    yield counted
    wiring.use_metrics(None)


def test_an_idempotency_key_replay_counts_nothing_more(api: LifecycleApi, metrics: MemoryMetrics) -> None:
    body = add_customer_body()
    first = api.post("/customers", body, key="add-1")
    assert first.status == 201, first.body
    assert api.post("/customers", body, key="add-1").body == first.body  # served from the idempotency table
    claim_id = first.body["claims"][0]["claim_id"]
    api.accept(claim_id)
    assert api.submit(claim_id, {"notes": "done"}, key="submit-1").status == 200
    assert api.submit(claim_id, {"notes": "done"}, key="submit-1").status == 200
    found = metrics.totals()
    assert (found[("CustomersAdded", FIXED)], found[("ClaimsSubmitted", ())]) == (1, 1)


def test_a_redelivered_bounce_counts_once(api: LifecycleApi, metrics: MemoryMetrics, lambda_context: Any) -> None:
    claim_id, message_id = requested(api)
    event = feedback("ses_bounce", claim_id, message_id)
    assert deliver(event, lambda_context) == {"updated": True}
    assert deliver(event, lambda_context) == {"updated": False}  # EventBridge delivers at least once
    assert metrics.totals()[("EmailBounces", ())] == 1


def test_the_functions_print_standard_emf_lines_with_low_cardinality_dimensions(
    api: LifecycleApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """The deployed adapter (Powertools single metrics, validated by Powertools when it serialises them): one
    EMF line per count, namespace from POWERTOOLS_METRICS_NAMESPACE, dimensions service, stage and the
    metric's own, never an id."""
    capsys.readouterr()
    claim_id = api.add_claim()
    api.accept(claim_id)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = []
    for line in lines:
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        assert isinstance(line["_aws"]["Timestamp"], int)
        assert directive["Namespace"] == "MciCustomers"
        (metric,) = directive["Metrics"]
        assert metric["Unit"] == "Count"
        name = metric["Name"]
        names.append(name)
        assert line[name] == 1.0 or line[name] == [1.0]
        (dimensions,) = directive["Dimensions"]
        assert dimensions == ["service", "stage", *METRICS[name]]
        assert (line["service"], line["stage"]) == ("mci-customers", "dev")
        assert claim_id not in json.dumps(line)
    assert names == [
        "CustomersAdded",
        "ConsentsRequested",
        "ReferralsCreated",
        "ConsentEmailsSent",
        "ConsentsGranted",
        "ReferralsUpgradedToCoSell",
    ]
