"""A tiny function that emits business metrics the way the service's functions do: Powertools Metrics, flushed
as EMF lines on stdout when the invocation ends. The local metrics board is tested with it, whatever the real
functions emit today (tests/unit/test_local_metrics.py, tests/e2e/test_local_metrics.py).

Its event names what to emit: ``{"metrics": {"CustomersAdded": 2}, "dimensions": {"payment_type": "fixed"}}``;
``"fail": true`` raises after adding them; an API Gateway event emits ``CustomersAdded`` once and answers 200.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

metrics = Metrics(namespace="MciCustomers", service="mci-customers")


@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "requestContext" in event:  # called through the HTTP API
        metrics.add_metric(name="CustomersAdded", unit=MetricUnit.Count, value=1)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}
    for name, value in (event.get("dimensions") or {}).items():
        metrics.add_dimension(name=name, value=value)
    for name, value in (event.get("metrics") or {}).items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if event.get("fail"):
        raise RuntimeError("the handler failed after adding its metrics")
    return {"emitted": sorted(event.get("metrics") or {})}
