"""Asynchronous AWS clients (aiobotocore) for the worker's event loop and the interactive tools,
with the settings of watcher.aws."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiobotocore.session import AioSession, get_session
from botocore.utils import parse_timestamp

from watcher.aws import botocore_config, credentials_for
from watcher.config.schema import AwsConfig


def _timestamp(text: str) -> datetime:
    """AWS's ISO 8601 timestamps (``2026-11-30T02:20:13.000Z``) without dateutil, which botocore uses
    by default and which took most of the time of listing a bucket; anything else as botocore would."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return parse_timestamp(text)  # type: ignore[no-any-return]


def aio_session(aws: AwsConfig) -> AioSession:
    session = get_session()
    if aws.profile:
        session.set_config_variable("profile", aws.profile)
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    return session


def aio_client_kwargs(aws: AwsConfig, *, pool: int = 10, read_timeout: float = 60.0) -> dict[str, Any]:
    return {
        "region_name": aws.region,
        "endpoint_url": aws.endpoint_url,
        "config": botocore_config(pool=pool, read_timeout=read_timeout),
        **credentials_for(aws),
    }
