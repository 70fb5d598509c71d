"""The business metrics port through Powertools Metrics: one CloudWatch EMF line per count, on stdout.

Powertools' metrics module is imported on the first count, not at cold start: most invocations (reads,
refusals) count nothing. Every line has the dimensions ``service`` and ``stage`` besides the metric's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from mci.domain.metrics import Count
from mci.observability import logger


class PowertoolsMetrics:
    def __init__(self, namespace: str, service: str, stage: str) -> None:
        self._namespace = namespace
        self._dimensions = {"service": service, "stage": stage}

    def count(self, counts: Sequence[Count]) -> None:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        for count in counts:
            try:
                with single_metric(
                    name=count.name,
                    unit=MetricUnit.Count,
                    value=count.value,
                    namespace=self._namespace,
                    default_dimensions=self._dimensions,
                ) as metric:
                    for name, value in count.dimensions:
                        metric.add_dimension(name=name, value=value)
            except Exception:  # the change has committed: a metric lost never fails the request
                logger.warning("metric not recorded", extra={"metric": count.name})
