"""The SES adapter's message tags (issue 15): SES takes only [A-Za-z0-9_.@-] in a tag value, at most 256 characters;
an API Gateway request id can hold '=' (and base64's '+' and '/'). Each character SES refuses is written as '_'
and its UTF-8 bytes in hex, deterministically, and read back the same way from a bounce or complaint."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.retries.standard import ExponentialBackoff
from moto.core.botocore_stubber import MockRawResponse

from mci.adapters import aws
from mci.adapters.ses_mailer import SesMailer, ses_tag_value, value_of_ses_tag
from mci.domain.errors import DependencyUnavailable, SendingThrottled, SendOutcomeUnknown
from mci.domain.ports import EmailMessage

SES_TAG_VALUE = re.compile(r"[A-Za-z0-9_.@-]{1,256}")


class Client:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def send_email(self, **request: Any) -> dict[str, str]:
        self.requests.append(request)
        return {"MessageId": "m-1"}


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("J5f0NhCDoAMEVxA=", "J5f0NhCDoAMEVxA_3D"),
        ("a+b/c==", "a_2Bb_2Fc_3D_3D"),
        ("0788d4b9-adae-414b-b134-cbd1ea85ac9a", "0788d4b9-adae-414b-b134-cbd1ea85ac9a"),
        ("schedule event: 7", "schedule_20event_3A_207"),
        ("añ", "a_C3_B1"),
    ],
)
def test_a_tag_value_is_what_ses_takes_and_reads_back_as_it_was(given: str, sent: str) -> None:
    assert ses_tag_value(given) == sent
    assert SES_TAG_VALUE.fullmatch(sent)
    assert value_of_ses_tag(sent) == given


def test_a_long_value_is_cut_to_what_ses_takes() -> None:
    assert len(ses_tag_value("=" * 200)) == 256
    assert SES_TAG_VALUE.fullmatch(ses_tag_value("=" * 200))


def test_every_tag_the_mailer_sends_is_a_value_ses_takes() -> None:
    client = Client()
    mailer = SesMailer(lambda: client, "noreply@example.com")  # type: ignore[arg-type,return-value]
    message = EmailMessage(
        to="ana@fabrikam.com",
        subject="s",
        text="t",
        html="h",
        tags={"claim_id": "c-1", "kind": "consent_request", "correlation_id": "J5f0NhCDoAMEVxA="},
    )

    assert mailer.send(message) == "m-1"

    assert client.requests[0]["EmailTags"] == [
        {"Name": "claim_id", "Value": "c-1"},
        {"Name": "kind", "Value": "consent_request"},
        {"Name": "correlation_id", "Value": "J5f0NhCDoAMEVxA_3D"},
    ]


class Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def send_email(self, **request: Any) -> dict[str, str]:
        raise self.error


MESSAGE = EmailMessage(to="ana@fabrikam.com", subject="s", text="t", html="<p>t</p>", tags={"kind": "consent_request"})


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"), SendOutcomeUnknown),
        (
            ClientError({"Error": {"Code": "InternalFailure"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "x"),
            SendOutcomeUnknown,
        ),
        (ConnectTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"), DependencyUnavailable),
        (
            ClientError(
                {"Error": {"Code": "TooManyRequestsException"}, "ResponseMetadata": {"HTTPStatusCode": 429}}, "x"
            ),
            SendingThrottled,
        ),
    ],
    ids=["answer-lost", "5xx", "never-connected", "throttled"],
)
def test_the_mailer_says_whether_ses_may_have_taken_a_message_it_could_not_confirm(
    error: Exception, raised: type[Exception]
) -> None:
    """A lost answer or a 5xx may have sent the email (the outbox keeps its link live); a connection never made or
    a throttle sent nothing."""
    mailer = SesMailer(lambda: Failing(error), "noreply@example.com")  # type: ignore[arg-type, return-value]
    with pytest.raises(DependencyUnavailable) as caught:
        mailer.send(MESSAGE)
    assert type(caught.value) is raised


def _lost(request: Any) -> Exception:
    return ReadTimeoutError(endpoint_url=request.url)


def _never_connected(request: Any) -> Exception:
    return ConnectTimeoutError(endpoint_url=request.url)


def _answer(status: int, code: str) -> Callable[[Any], AWSResponse]:
    def answer(request: Any) -> AWSResponse:
        body = json.dumps({"message": code}).encode()
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json"}
        return AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]

    return answer


THROTTLED = _answer(429, "TooManyRequestsException")
FAILED = _answer(500, "InternalFailure")


@pytest.mark.parametrize(
    ("attempts", "raised"),
    [
        ([_lost, THROTTLED, THROTTLED, THROTTLED], SendOutcomeUnknown),
        ([FAILED, _never_connected, _never_connected, _never_connected], SendOutcomeUnknown),
        ([THROTTLED, _lost, THROTTLED, THROTTLED], SendOutcomeUnknown),
        ([THROTTLED, THROTTLED, THROTTLED, THROTTLED], SendingThrottled),
        ([_never_connected, THROTTLED, _never_connected, THROTTLED], SendingThrottled),
        ([_never_connected] * 4, DependencyUnavailable),
    ],
    ids=["lost-then-throttled", "5xx-then-never-connected", "lost-in-the-middle", "throttled", "nothing-sent", "down"],
)
def test_the_mailer_judges_every_attempt_of_the_clients_retries(
    attempts: list[Callable[[Any], Any]], raised: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore's standard retries make up to four attempts inside one call; the mailer judged only the last one's
    error, so an email SES may have taken on the first attempt (its answer lost, or a 5xx) was reported as certainly
    not sent (throttled), and the outbox dropped its link on the redelivery."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda *_: 0)
    session = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    client = session.client("sesv2", config=aws._CONFIG)
    made: list[int] = []

    def attempt(request: Any, **_: Any) -> AWSResponse:
        made.append(1)
        answer = attempts[len(made) - 1](request)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    client.meta.events.register_first("before-send.sesv2.SendEmail", attempt)
    with pytest.raises(DependencyUnavailable) as caught:
        SesMailer(lambda: client, "noreply@example.com").send(MESSAGE)
    assert len(made) == len(attempts)
    assert type(caught.value) is raised


def test_closing_connections_closes_every_client_created(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a SnapStart restore every pooled connection is closed: the sweep's one-attempt SES client's were not."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    factories = [aws.dynamodb, aws.sesv2, aws.sesv2_one_attempt, aws.events]
    aws.reset_clients()
    closed: list[str] = []
    try:
        for factory in factories:
            monkeypatch.setattr(factory(), "close", lambda name=factory.__name__: closed.append(name))
        aws.close_connections()
    finally:
        aws.reset_clients()
    assert sorted(closed) == sorted(f.__name__ for f in factories)
