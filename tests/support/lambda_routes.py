"""Functions of ``python`` routes for the Lambda shim's tests, run in this process and inside real Lambda
functions (``watcher package lambda --add tests/support/lambda_routes.py`` puts this file at the zip's root;
the configuration then names ``lambda_routes:report``). Only watcher and boto3 are imported, which a function
has.

``report`` sends what it saw to the SQS queue ``options["queue_url"]`` (inside a function, boto3 reaches
LocalStack through ``AWS_ENDPOINT_URL``; in this process through ``options["endpoint_url"]``), so that a test
can tell which unit ran, how often, with which receive count, in which invocation.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from watcher.errors import PermanentError, RetryableError
from watcher.logs import log_fields
from watcher.routing import Unit

_clients: dict[tuple[str | None, str], Any] = {}
_lock = threading.Lock()


def _sqs(options: Mapping[str, Any]) -> Any:
    import boto3

    endpoint = options.get("endpoint_url")
    region = str(options.get("region") or os.environ.get("AWS_REGION") or "us-east-1")
    with _lock:
        if (endpoint, region) not in _clients:
            credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"} if endpoint else {}
            _clients[(endpoint, region)] = boto3.client("sqs", endpoint_url=endpoint, region_name=region, **credentials)
        return _clients[(endpoint, region)]


def seen(unit: Unit) -> dict[str, Any]:
    context = log_fields()
    return {
        "route": unit.route.name,
        "key": unit.record.key,
        "dataset_uri": unit.dataset_uri,
        "message_id": unit.message_id,
        "receive_count": unit.receive_count,
        "aws_request_id": context.get("aws_request_id"),
    }


def report(unit: Unit, options: Mapping[str, Any]) -> None:
    _sqs(options).send_message(QueueUrl=options["queue_url"], MessageBody=json.dumps(seen(unit)))


def fail_permanently(unit: Unit, options: Mapping[str, Any]) -> None:
    raise PermanentError(f"cannot read {unit.record.key} (test)")


def fail_first_delivery(unit: Unit, options: Mapping[str, Any]) -> None:
    """Retryable on a message's first delivery, then the same as ``report``."""
    if unit.receive_count == 1:
        raise RetryableError("downstream not ready on the first delivery (test)")
    report(unit, options)


async def sleep(unit: Unit, options: Mapping[str, Any]) -> None:
    await asyncio.sleep(float(options.get("seconds", 0)))
    if "queue_url" in options:
        report(unit, options)
