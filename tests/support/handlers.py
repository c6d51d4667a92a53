"""Handler functions for the integration tests, loaded by the real `python` handler type
(``handler: {type: python, function: tests.support.handlers:NAME, options: {...}}``).

Each call appends one JSON line to ``options["calls_file"]`` so that a test can count how often, and
when, the worker ran the unit, from outside the worker process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from watcher.errors import PermanentError, RetryableError
from watcher.routing import Unit


def _record_call(unit: Unit, options: Mapping[str, Any], event: str = "call") -> None:
    line = {
        "event": event,
        "time": time.time(),
        "route": unit.route.name,
        "bucket": unit.record.bucket,
        "key": unit.record.key,
        "dataset_uri": unit.dataset_uri,
        "receive_count": unit.receive_count,
        "message_id": unit.message_id,
    }
    with open(options["calls_file"], "a", encoding="utf-8") as calls:
        calls.write(json.dumps(line) + "\n")


async def record(unit: Unit, options: Mapping[str, Any]) -> None:
    _record_call(unit, options)


async def sleep(unit: Unit, options: Mapping[str, Any]) -> None:
    _record_call(unit, options)
    await asyncio.sleep(float(options["seconds"]))
    _record_call(unit, options, "done")


def fail_retryable(unit: Unit, options: Mapping[str, Any]) -> None:
    _record_call(unit, options)
    raise RetryableError("downstream unavailable (test)")


async def fail_permanent(unit: Unit, options: Mapping[str, Any]) -> None:
    _record_call(unit, options)
    raise PermanentError(f"bad input: {unit.record.key} (test)")


def fail_first(unit: Unit, options: Mapping[str, Any]) -> None:
    """Fails the first time it is called (a marker file remembers it), then succeeds."""
    _record_call(unit, options)
    marker = f"{options['calls_file']}.{unit.route.name}.failed"
    try:
        with open(marker, "x"):
            pass
    except FileExistsError:
        return
    raise RetryableError("first attempt fails (test)")


def list_marker_folder(unit: Unit, options: Mapping[str, Any]) -> None:
    """A marker's consumer: records which objects its folder held when the marker's event arrived."""
    import boto3  # only this handler needs it

    s3 = boto3.client(
        "s3",
        endpoint_url=options["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    folder = unit.record.key.rpartition("/")[0] + "/"
    listed = s3.list_objects_v2(Bucket=unit.record.bucket, Prefix=folder)
    found = sorted(item["Key"][len(folder) :] for item in listed.get("Contents", []))
    with open(options["calls_file"], "a", encoding="utf-8") as calls:
        calls.write(json.dumps({"event": "listed", "key": unit.record.key, "found": found}) + "\n")
