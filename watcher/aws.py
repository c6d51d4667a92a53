"""AWS client construction in one place: region, endpoint (LocalStack / S3-compatible), profile,
timeouts and retry mode, for aiobotocore (the worker) and boto3 (CLI tools, blocking helpers)."""

from __future__ import annotations

from typing import Any

import boto3
from aiobotocore.session import AioSession, get_session
from botocore.config import Config as BotoConfig

from watcher.config import AwsConfig


def botocore_config(*, pool: int = 10, read_timeout: float = 60.0) -> BotoConfig:
    # "standard" retries absorb throttling and 5xx for every call before our own backoff applies.
    return BotoConfig(
        retries={"mode": "standard", "max_attempts": 4},
        max_pool_connections=pool,
        connect_timeout=10,
        read_timeout=read_timeout,
    )


def _credentials_for(aws: AwsConfig) -> dict[str, str]:
    # LocalStack accepts any credentials; give it some when the environment has none so that a
    # newcomer's `make demo` works without an AWS profile.
    if aws.endpoint_url and _has_no_credentials(aws):
        return {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    return {}


def _has_no_credentials(aws: AwsConfig) -> bool:
    return boto3.Session(profile_name=aws.profile).get_credentials() is None


def aio_session(aws: AwsConfig) -> AioSession:
    session = get_session()
    if aws.profile:
        session.set_config_variable("profile", aws.profile)
    return session


def aio_client_kwargs(aws: AwsConfig, *, pool: int = 10, read_timeout: float = 60.0) -> dict[str, Any]:
    return {
        "region_name": aws.region,
        "endpoint_url": aws.endpoint_url,
        "config": botocore_config(pool=pool, read_timeout=read_timeout),
        **_credentials_for(aws),
    }


def client(aws: AwsConfig, service: str) -> Any:
    """A blocking boto3 client (for the CLI and for calls made in threads)."""
    session = boto3.Session(profile_name=aws.profile, region_name=aws.region)
    return session.client(service, endpoint_url=aws.endpoint_url, config=botocore_config(), **_credentials_for(aws))
