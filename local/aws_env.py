"""Never AWS: the fake credentials and region of every local process (the stack, tests, benchmarks)."""

from __future__ import annotations

from typing import Any

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account


def fake_aws_environment(region: str = REGION) -> dict[str, str]:
    """Environment variables that keep boto3 off real AWS: fake credentials, one region, no metadata service."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def fake_client(service: str, endpoint_url: str, region: str = REGION) -> Any:
    """A boto3 client of ``service`` at ``endpoint_url`` (moto) with the fake credentials, whatever the
    process environment says."""
    import boto3

    environment = fake_aws_environment(region)
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment["AWS_SESSION_TOKEN"],
    )
