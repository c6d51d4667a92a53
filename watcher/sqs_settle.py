"""Settling one message: change its visibility (a retry's backoff, a hand-back at shutdown) or send
it to the dead-letter queue. Shared by the worker and the Lambda shim; each call is retried a few
times, reports success as a bool, and logs and counts its failures. A ``ReceiptHandleIsInvalid``
means another consumer owns the message now, not a crash."""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from watcher.backoff import equal_jitter
from watcher.logs import get_logger
from watcher.metrics import Metrics
from watcher.sqs import is_gone

_log = get_logger("watcher.acks")  # the name these lines had in the worker: log queries keep working
ATTEMPTS = 3  # each SQS call that settles a message, on top of botocore's own retries


async def pause_before_retry(attempt: int) -> None:
    """After failed attempt ``attempt`` (0-based) of a settling call: about 0.2 s, then 0.4 s
    (watcher.backoff's equal jitter); no pause after the last attempt, nothing follows it."""
    if attempt + 1 < ATTEMPTS:
        await asyncio.sleep(equal_jitter(attempt + 1, 0.2, 1.0))


async def change_visibility(
    sqs: Any, queue_url: str, receipt: str, seconds: int, metrics: Metrics, message_id: str
) -> bool:
    for attempt in range(ATTEMPTS):
        try:
            await sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=seconds)
            return True
        except ClientError as exc:
            if is_gone(exc):
                _log.info(
                    "visibility not changed: the receipt handle is no longer ours",
                    message_id=message_id,
                )
                return False
            error: Exception = exc
        except BotoCoreError as exc:
            error = exc
        metrics.errors.labels("visibility").inc()
        _log.warning(
            "ChangeMessageVisibility failed",
            message_id=message_id,
            error=str(error),
            attempt=attempt + 1,
        )
        await pause_before_retry(attempt)
    return False


async def send_to_dead_letter_queue(sqs: Any, request: dict[str, Any], metrics: Metrics) -> bool:
    """Send a message to the DLQ (the request from watcher.outcome.dead_letter_request), retried."""
    for attempt in range(ATTEMPTS):
        try:
            await sqs.send_message(**request)
            return True
        except (ClientError, BotoCoreError) as exc:
            metrics.errors.labels("dead_letter").inc()
            _log.warning("sending to the DLQ failed", error=str(exc), attempt=attempt + 1)
            await pause_before_retry(attempt)
    return False
