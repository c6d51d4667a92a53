"""Asynchronous AWS clients (aiobotocore) for the worker's event loop and the interactive tools,
with the settings of watcher.aws."""

from __future__ import annotations

from typing import Any

from aiobotocore.session import AioSession, get_session

from watcher.aws import botocore_config, credentials_for
from watcher.config.schema import AwsConfig


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
        **credentials_for(aws),
    }
