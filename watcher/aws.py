"""AWS client construction in one place: region, endpoint (LocalStack / S3-compatible), profile,
timeouts and retry mode. Blocking boto3 clients here (CLI tools, calls made in threads); the
asynchronous aiobotocore ones in watcher.aws_async, which brings aiohttp."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from watcher.config.schema import AwsConfig


def botocore_config(*, pool: int = 10, read_timeout: float = 60.0) -> BotoConfig:
    # "standard" retries absorb throttling and 5xx for every call before our own backoff applies.
    return BotoConfig(
        retries={"mode": "standard", "max_attempts": 4},
        max_pool_connections=pool,
        connect_timeout=10,
        read_timeout=read_timeout,
    )


def credentials_for(aws: AwsConfig) -> dict[str, str]:
    """Explicit credentials for a local endpoint when the environment has none, else nothing.

    LocalStack accepts any credentials; giving it some lets a newcomer's `make demo` work without
    an AWS profile."""
    if aws.endpoint_url and boto3.Session(profile_name=aws.profile).get_credentials() is None:
        return {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    return {}


def client(aws: AwsConfig, service: str, *, pool: int = 10) -> Any:
    """A blocking boto3 client (for the CLI and for calls made in threads)."""
    session = boto3.Session(profile_name=aws.profile, region_name=aws.region)
    return session.client(
        service, endpoint_url=aws.endpoint_url, config=botocore_config(pool=pool), **credentials_for(aws)
    )
