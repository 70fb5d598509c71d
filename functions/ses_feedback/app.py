"""SES bounce and complaint events (through EventBridge): mark the claim's consent email so the partner sees it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mci.adapters.ses_mailer import value_of_ses_tag
from mci.domain.claim_queries import record_delivery_problem
from mci.domain.claims import EmailStatus
from mci.observability import log_keys, logger, observed
from mci.tracing import annotate, traced
from mci.wiring import services

STATUSES = {"Bounce": EmailStatus.BOUNCED, "Complaint": EmailStatus.COMPLAINED}


@traced("ses_feedback")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    correlation_id = str(event.get("id") or context.aws_request_id)  # the EventBridge event's id
    claim_id = _tags(event).get("claim_id") or [None]  # on every line, an ignored event's too
    return observed(event, context, lambda: _feedback(event), correlation_id=correlation_id, claim_id=claim_id[0])


def _tags(event: dict[str, Any]) -> dict[str, Any]:
    tags: dict[str, Any] = ((event.get("detail") or {}).get("mail") or {}).get("tags") or {}
    return tags


def _feedback(event: dict[str, Any]) -> dict[str, Any]:
    detail = event.get("detail") or {}
    status = STATUSES.get(str(detail.get("eventType", "")))
    mail = detail.get("mail") or {}
    tags = mail.get("tags") or {}
    claim_ids = tags.get("claim_id") or []
    message_id = str(mail.get("messageId", ""))
    # The request that queued the email (its SES tag): request -> email -> bounce (docs/operations.md).
    queued_by = [value_of_ses_tag(str(v)) for v in tags.get("correlation_id") or []][:1]
    if status is None or not claim_ids or not message_id:
        logger.info("ignored SES event", extra={"event_type": detail.get("eventType")})
        return {"updated": False}
    runtime = services()
    claim_id, now = str(claim_ids[0]), runtime.clock.now()
    log_keys(claim_id=claim_id)
    annotate("claim_id", claim_id)
    updated = record_delivery_problem(
        runtime.claims, claim_id, message_id, status, now, retry=runtime.settings.conflict_retry
    )
    logger.info(
        "SES feedback",
        extra={"status": status.value, "updated": updated, "email_correlation_id": queued_by[0] if queued_by else None},
    )
    return {"updated": updated}
