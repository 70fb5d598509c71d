"""The scheduled sweep (EventBridge Scheduler): expire claims past their deadline and send reminders (rule 17)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.observability import logger, observed
from mci.tracing import annotate, traced
from mci.wiring import sweep


@traced("expire_claims")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    # The schedule's event id when the event has one (EventBridge-shaped), else this invocation's request id.
    correlation_id = str(event.get("id") or context.aws_request_id)
    return observed(event, context, lambda: _run(correlation_id, context), correlation_id=correlation_id)


def _run(correlation_id: str, context: LambdaContext) -> dict[str, int]:
    # The run stops sending before the function's timeout (SWEEP_SEND_MARGIN_SECONDS): the rest waits for the next.
    report = sweep().run(correlation_id, remaining=lambda: context.get_remaining_time_in_millis() / 1000)
    for item in report.poison:  # rule 29: given up for good, recorded on the claim (docs/operations.md)
        logger.warning("poison item", extra=item)
    logger.info("sweep finished", extra=report.as_dict())
    for name, count in report.as_dict().items():
        annotate(name, count)
    return report.as_dict()
