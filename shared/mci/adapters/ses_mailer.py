"""Email through SES (v2 API): plain text and HTML, tagged with the claim for bounce handling."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from mci.adapters.aws import dependency, error_code
from mci.domain.errors import EmailRejected
from mci.domain.ports import EmailMessage

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sesv2 import SESV2Client


# Rule 29: SES refuses this message or this recipient for good; sending it again cannot help, fixing the
# address can. (Throttling is retried; a paused account or a missing identity is an operator's: aws.py.)
REJECTED_CODES = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue"})


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
            "EmailTags": [{"Name": name, "Value": value} for name, value in message.tags.items()],
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            with dependency("SES"):
                response = self._client().send_email(**request)
        except ClientError as error:
            if error_code(error) in REJECTED_CODES:
                raise EmailRejected(f"The email service refused the message for good ({error_code(error)})") from error
            raise
        return str(response.get("MessageId", ""))
