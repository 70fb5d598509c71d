"""Business metrics through the real handlers on moto: an Idempotency-Key replay and a redelivered SES event
count nothing more, and what the functions print is standard CloudWatch EMF (docs/operations.md#business-metrics)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import jsonschema
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

# The embedded metric format's MUSTs as a JSON schema (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
# CloudWatch_Embedded_Metric_Format_Specification.html): _aws with an integer Timestamp (ms) and its directives, each
# a Namespace, dimension sets of at most 9 names and at most 100 metric definitions, a unit CloudWatch knows.
_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_BYTES = ["Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes"]
_BITS = ["Bits", "Kilobits", "Megabits", "Gigabits", "Terabits"]
_UNITS = ["Seconds", "Microseconds", "Milliseconds", *_BYTES, *_BITS, "Percent", "Count", "None"] + [
    f"{unit}/Second" for unit in (*_BYTES, *_BITS, "Count")
]
EMF_SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": _NAME,
                            "Dimensions": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "array", "maxItems": 9, "items": _NAME},
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {"Name": _NAME, "Unit": {"enum": _UNITS}},
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def assert_emf(line: dict[str, Any]) -> None:
    """One printed line against the schema, and its targets as the specification asks: every dimension a string
    member of the root, every metric a number or at most 100 numbers."""
    jsonschema.validate(line, EMF_SCHEMA)
    for directive in line["_aws"]["CloudWatchMetrics"]:
        for dimension in (name for names in directive["Dimensions"] for name in names):
            assert isinstance(line.get(dimension), str), dimension
        for metric in directive["Metrics"]:
            value = line.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            assert 0 < len(values) <= 100, metric
            assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values), metric


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
        assert_emf(line)
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


def test_the_emf_schema_check_refuses_what_cloudwatch_would_not_extract() -> None:
    line = {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["service"]], "Metrics": [{"Name": "M"}]}],
        },
        "service": "s",
        "M": 1,
    }
    assert_emf(line)
    for broken in (
        {**line, "_aws": {**line["_aws"], "Timestamp": "1"}},  # not milliseconds
        {**line, "service": 3},  # a dimension is a string
        {**line, "M": "1"},  # a metric is a number
        {**line, "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [], "Metrics": []}]}},
    ):
        with pytest.raises((jsonschema.ValidationError, AssertionError)):
            assert_emf(broken)
