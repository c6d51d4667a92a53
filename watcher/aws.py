"""AWS client construction in one place: region, endpoint (LocalStack / S3-compatible), profile,
timeouts and retry mode. Blocking boto3 clients here (CLI tools, calls made in threads); the
asynchronous aiobotocore ones in watcher.aws_async, which brings aiohttp."""

from __future__ import annotations

import os
import platform
from typing import Any

import boto3
import botocore
from botocore.config import Config as BotoConfig

from watcher import __version__
from watcher.config.schema import AwsConfig

# A fixed User-Agent that names us (CloudTrail's userAgent shows which calls the worker made). Set
# explicitly, it also spares botocore rebuilding its own string, with its per-request feature
# metrics, character by character before every request: 6 % of the worker's CPU in a profile.
USER_AGENT = (
    f"watcher/{__version__} botocore/{botocore.__version__} "
    f"Python/{platform.python_version()} {platform.system()}/{platform.release()}"
) + (f" exec-env/{os.environ['AWS_EXECUTION_ENV']}" if os.environ.get("AWS_EXECUTION_ENV") else "")


def botocore_config(*, pool: int = 10, read_timeout: float = 60.0) -> BotoConfig:
    # "standard" retries absorb throttling and 5xx for every call before our own backoff applies.
    return BotoConfig(
        retries={"mode": "standard", "max_attempts": 4},
        max_pool_connections=pool,
        connect_timeout=10,
        read_timeout=read_timeout,
        user_agent=USER_AGENT,
    )


def credentials_for(aws: AwsConfig) -> dict[str, str]:
    """Explicit credentials for a local endpoint when the environment has none, else nothing.

    LocalStack accepts any credentials; giving it some lets a newcomer's `make demo` work without
    an AWS profile."""
    if aws.endpoint_url and boto3.Session(profile_name=aws.profile).get_credentials() is None:
        return {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    return {}


def client(aws: AwsConfig, service: str, *, pool: int = 10, config: BotoConfig | None = None) -> Any:
    """A blocking boto3 client (for the CLI and for calls made in threads); ``config`` adds settings
    (a signature version, say) to ours."""
    session = boto3.Session(profile_name=aws.profile, region_name=aws.region)
    settings = botocore_config(pool=pool) if config is None else botocore_config(pool=pool).merge(config)
    return session.client(service, endpoint_url=aws.endpoint_url, config=settings, **credentials_for(aws))
