"""boto3 clients, created lazily, one per service per process; AWS errors translated where they are seen."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

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


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    return boto3.session.Session().client("dynamodb", config=_CONFIG)


@lru_cache(maxsize=1)
def sesv2() -> SESV2Client:
    return boto3.session.Session().client("sesv2", config=_CONFIG)


@lru_cache(maxsize=1)
def events() -> EventBridgeClient:
    return boto3.session.Session().client("events", config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests that switch endpoints)."""
    dynamodb.cache_clear()
    sesv2.cache_clear()
    events.cache_clear()


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def dependency(name: str) -> Iterator[None]:
    """Turn throttling and transient AWS failures into a retryable 503 with Retry-After."""
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        if code in THROTTLING_CODES or code in TRANSIENT_CODES:
            raise DependencyUnavailable(f"{name} is busy; retry shortly.", retry_after_seconds=1) from error
        raise
    except (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError) as error:
        raise DependencyUnavailable(f"{name} did not answer in time; retry shortly.", retry_after_seconds=2) from error
