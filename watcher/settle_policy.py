"""How a message's handling ends, the same in the worker and the Lambda shim: the one line of a message
that succeeded, and for one that did not, dead-letter a permanent failure (else, or when the DLQ
cannot be reached, the backoff), with the lines and counts of each.

The SQS calls are the caller's (watcher.sqs_settle in the worker; the shim's ``Queues``, which import
botocore only on a first failure), so this module imports no AWS SDK.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from watcher.config.schema import WorkerConfig
from watcher.logs import get_logger, log_enabled
from watcher.metrics import Metrics
from watcher.outcome import MessageOutcome, attempts_left, retry_delay

_log = get_logger("watcher.settle")


def log_message_done(outcome: MessageOutcome, action: str) -> None:
    """The message's line (with one unit, also the unit's summary: see Dispatcher.process)."""
    if log_enabled(logging.INFO):  # skip building the event when INFO is off
        if outcome.skipped:
            skipped = [s.reason for s in outcome.skipped]
            _log.info("message done", action=action, units=len(outcome.units), skipped=skipped)
        else:
            _log.info("message done", action=action, units=len(outcome.units))


async def settle_failure(
    outcome: MessageOutcome,
    receive_count: int,
    *,
    worker: WorkerConfig,
    metrics: Metrics,
    dead_letter: Callable[[], Awaitable[str | None]],
    delay: Callable[[int], Awaitable[bool]],
    max_receive_count: Callable[[], Awaitable[int | None]],
    delete_source: Callable[[], Awaitable[bool]] | None = None,
) -> bool:
    """Settle a message whose outcome is ``permanent`` or ``retry``; True when it was dead-lettered.

    ``dead_letter()`` sends it to the DLQ and returns the DLQ's URL, or None when it could not;
    then, counted as dead-lettered, ``delete_source()`` deletes it from its queue (the worker's;
    Lambda deletes what the answer does not list). ``delay(seconds)`` changes its visibility and
    says whether it did."""
    if outcome.status == "permanent":
        dlq_url = await dead_letter()
        if dlq_url is not None:
            metrics.dead_lettered.inc()
            fields: dict[str, Any] = {"dlq_url": dlq_url}
            if delete_source is not None:
                fields["deleted_from_source"] = await delete_source()
            _log.warning("message dead-lettered", reason=outcome.reason, failed_route=outcome.route, **fields)
            return True
        _log.error("could not dead-letter the message; it will be retried", reason=outcome.reason)
    seconds = retry_delay(receive_count, worker)
    changed = await delay(seconds)
    metrics.retried.inc()
    _log.warning(
        "message will be retried",
        reason=outcome.reason,
        retry_in_seconds=seconds if changed else None,
        attempts_left=attempts_left(await max_receive_count(), receive_count),
    )
    return False
