"""Email through SES (v2 API): plain text and HTML, tagged with the claim for bounce handling and with the correlation
id of the request that queued it, so an operator follows request -> email -> bounce (docs/operations.md)."""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from mci.adapters.aws import ANSWER_LOST, THROTTLING_CODES, dependency, error_code, outcome_unknown
from mci.domain.errors import DependencyUnavailable, EmailRejected, SendingThrottled, SendOutcomeUnknown
from mci.domain.ports import EmailMessage
from mci.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sesv2 import SESV2Client


# Rule 29: SES refuses this message or this recipient for good; sending it again cannot help, fixing the
# address can. (A paused account or a missing identity is an operator's: aws.py.)
REJECTED_CODES = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue"})
MAX_TAG_VALUE = 256  # SES message tag values: [A-Za-z0-9_.@-], 1 to 256 characters
_NOT_IN_A_TAG = re.compile(r"[^A-Za-z0-9_.@-]")
_ESCAPED = re.compile(r"(?:_[0-9A-F]{2})+")


def ses_tag_value(text: str) -> str:
    """``text`` as SES takes it in a tag: each character it refuses written as ``_`` and its UTF-8 bytes in hex
    (an API Gateway request id's ``=`` is ``_3D``), cut to 256 characters. Deterministic; the service's ids hold
    no ``_``, so ``value_of_ses_tag`` reads them back as they were."""
    escaped = _NOT_IN_A_TAG.sub(lambda m: "".join(f"_{byte:02X}" for byte in m.group().encode()), text)
    return escaped[:MAX_TAG_VALUE] or "-"


def value_of_ses_tag(value: str) -> str:
    """A tag value as it was before ``ses_tag_value`` (from an SES bounce or complaint event)."""
    return _ESCAPED.sub(lambda m: bytes.fromhex(m.group().replace("_", "")).decode(errors="replace"), value)


# Each SendEmail attempt botocore makes inside one ``send`` (its standard retries), noted as it ends: whether SES
# may have taken the message on it (its answer lost, or a 5xx). The last attempt's error alone does not say: a first
# attempt whose answer was lost, then three throttled ones, may have sent the email.
_attempts: ContextVar[list[bool] | None] = ContextVar("ses_send_attempts", default=None)
_NOTE_ATTEMPTS = "needs-retry.sesv2.SendEmail"


def _note_attempt(response: Any = None, caught_exception: BaseException | None = None, **_: Any) -> None:
    """botocore's ``needs-retry`` event, after every attempt (the last too); answers None, so the retry handler
    alone decides whether to retry."""
    noted = _attempts.get()
    if noted is None:
        return
    status = getattr(response[0], "status_code", 0) if response else 0
    noted.append(isinstance(caught_exception, ANSWER_LOST) or int(status or 0) >= 500)


class SesMailer:
    """``client`` is the factory of the SES client, called on the first send: functions that build a
    mailer but may not send (the consent page, the sweep) do not create an SES client at start-up."""

    # The client operations it calls (mci.snapstart primes each; tests/moto/test_iam_least_privilege.py checks).
    AWS_CALLS: ClassVar[tuple[str, ...]] = ("sesv2:SendEmail",)

    def __init__(self, client: Callable[[], SESV2Client], sender: str, configuration_set: str | None = None) -> None:
        self._client = client
        self._sender = sender
        self._configuration_set = configuration_set

    def send(self, message: EmailMessage) -> str:
        request: dict[str, Any] = {
            "FromEmailAddress": self._sender,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": message.text, "Charset": "UTF-8"},
                        "Html": {"Data": message.html, "Charset": "UTF-8"},
                    },
                }
            },
            "EmailTags": [{"Name": name, "Value": ses_tag_value(value)} for name, value in message.tags.items()],
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        # What an operator follows an email by; never its address or content (personal data, the consent link).
        about = {
            "kind": message.tags.get("kind"),
            "claim_id": message.tags.get("claim_id"),
            "email_correlation_id": message.tags.get("correlation_id"),
        }
        client = self._client()
        events = getattr(getattr(client, "meta", None), "events", None)  # a test's stand-in may have none
        if events is not None:
            events.register(_NOTE_ATTEMPTS, _note_attempt, unique_id="mci.ses_mailer.note_attempt")
        noted: list[bool] = []
        attempts = _attempts.set(noted)
        try:
            with dependency("SES"):
                response = client.send_email(**request)
        except DependencyUnavailable as error:
            cause = error.__cause__
            # SES may have taken it on any attempt: its answer was lost, or it failed mid-way. Only when every
            # attempt certainly sent nothing (throttled, never connected) may its link be dropped.
            if outcome_unknown(error) or any(noted):
                raise SendOutcomeUnknown(error) from cause
            if isinstance(cause, ClientError) and error_code(cause) in THROTTLING_CODES:
                raise SendingThrottled from cause
            raise
        except ClientError as error:
            if error_code(error) in REJECTED_CODES:
                logger.warning("email refused by SES", extra={**about, "code": error_code(error)})
                raise EmailRejected(f"The email service refused the message for good ({error_code(error)})") from error
            raise
        finally:
            _attempts.reset(attempts)
        message_id = str(response.get("MessageId", ""))
        logger.info("email handed to SES", extra={**about, "message_id": message_id})
        return message_id
