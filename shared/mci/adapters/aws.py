"""boto3 clients, created lazily, one per service per process; AWS errors translated where they are seen."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from mci.domain.errors import DependencyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sesv2 import SESV2Client

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
)
# The sweep's SES client: one attempt per send. Its PacedMailer (mci.domain.sending) stops the run at SES's first
# throttle; with ``_CONFIG`` botocore's standard mode tries a throttled send four times (``max_attempts`` counts the
# retries, ``total_max_attempts`` every attempt), spending the account's sending rate on sends SES refuses. The API's
# consent send keeps ``_CONFIG``'s retries (a partner waits on it).
_ONE_ATTEMPT = _CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))

# SES's "Maximum sending rate exceeded" or "Daily message quota exceeded" is TooManyRequestsException (429) in v2,
# Throttling in v1: nothing was sent, and the same message is taken later (mci.domain.sending).
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "Throttling",
    }
)
TRANSIENT_CODES = frozenset({"InternalServerError", "ServiceUnavailable", "InternalFailure"})
# Rule 29 and SPEC §4: what only an operator can fix (permissions, a missing table, bus, identity or
# configuration set, a request the service itself built wrong, a paused or suspended SES account). Never the
# client's fault, never a 500: a 503 the client may retry later, while the alarms call an operator.
OPERATOR_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "ResourceNotFoundException",
        "NotFoundException",
        "ValidationException",
        "SerializationException",
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
    }
)
OPERATOR_RETRY_AFTER_SECONDS = 60


# A boto3 Session is not safe to share between threads while it creates clients.
_creating = threading.Lock()


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    """One session per process: its clients share the endpoint and partition data it loads once."""
    return boto3.session.Session()


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    with _creating:
        return _session().client("dynamodb", config=_CONFIG)


@lru_cache(maxsize=1)
def sesv2() -> SESV2Client:
    with _creating:
        return _session().client("sesv2", config=_CONFIG)


@lru_cache(maxsize=1)
def sesv2_one_attempt() -> SESV2Client:
    """The sweep's SES client: a throttled send is answered at once, never retried inside the call."""
    with _creating:
        return _session().client("sesv2", config=_ONE_ATTEMPT)


@lru_cache(maxsize=1)
def events() -> EventBridgeClient:
    with _creating:
        return _session().client("events", config=_CONFIG)


_FACTORIES = {"dynamodb": dynamodb, "sesv2": sesv2, "events": events}
# Each client factory by the service name adapters give their calls (``AWS_CALLS``: "dynamodb:GetItem").
CLIENTS: dict[str, Callable[[], BaseClient]] = dict(_FACTORIES)


def reset_clients() -> None:
    """Forget cached clients and their session (tests that switch endpoints or credentials)."""
    dynamodb.cache_clear()
    sesv2.cache_clear()
    sesv2_one_attempt.cache_clear()
    events.cache_clear()
    _session.cache_clear()


def created_clients() -> dict[str, BaseClient]:
    """The clients created so far, by service name."""
    return {service: factory() for service, factory in _FACTORIES.items() if factory.cache_info().currsize}


def forget_client(service: str) -> None:
    """Forget one cached client (SnapStart priming: a client only the priming needed)."""
    _FACTORIES[service].cache_clear()


def close_connections() -> None:
    """Close the pooled connections of every client created so far (after a SnapStart restore: a connection in
    the snapshot would be shared by every restored copy). A closed client opens new connections when used."""
    for client in created_clients().values():
        client.close()
    if sesv2_one_attempt.cache_info().currsize:  # the sweep's, beside its service's shared client
        sesv2_one_attempt().close()


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


SILENT = (ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError, EndpointConnectionError)
# The request may have reached the service: its answer was lost on the way back.
ANSWER_LOST = (ReadTimeoutError, ConnectionClosedError)


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def unavailable(name: str, error: BaseException) -> DependencyUnavailable | None:
    """The retryable answer for a throttled, failing (5xx), silent or misconfigured (operator) AWS call; None for
    any other error (a conditional failure, which its caller handles)."""
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in THROTTLING_CODES or code in TRANSIENT_CODES or _status(error) >= 500:
            return DependencyUnavailable(f"{name} is busy; retry shortly.", retry_after_seconds=1)
        if code in OPERATOR_CODES:
            return operator_problem(name, code)
        return None
    if isinstance(error, SILENT):
        return DependencyUnavailable(f"{name} did not answer in time; retry shortly.", retry_after_seconds=2)
    return None


def operator_problem(name: str, code: str) -> DependencyUnavailable:
    """What only an operator can fix (OPERATOR_CODES): a 503 with a long Retry-After while the alarms call one."""
    return DependencyUnavailable(
        f"{name} refused the service's request ({code}); operators are alerted. Retry later.",
        retry_after_seconds=OPERATOR_RETRY_AFTER_SECONDS,
    )


@contextmanager
def dependency(name: str) -> Iterator[None]:
    """Turn throttling, transient failures, timeouts and operator problems of an AWS call into a 503 with
    Retry-After."""
    try:
        yield
    except (ClientError, *SILENT) as error:
        translated = unavailable(name, error)
        if translated is None:
            raise
        raise translated from error


def outcome_unknown(error: BaseException) -> bool:
    """Whether a failed write may have been applied all the same: its answer was lost, or the service failed
    mid-way (5xx). A throttled request, or one that never connected, was not applied."""
    cause = error.__cause__ if isinstance(error, DependencyUnavailable) else error
    if isinstance(cause, ANSWER_LOST):
        return True
    return isinstance(cause, ClientError) and (error_code(cause) in TRANSIENT_CODES or _status(cause) >= 500)
