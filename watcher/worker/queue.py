"""The worker's side of the queue: reaching it at start (finding it and its DLQ is watcher.sqs's
job), and its and the DLQ's depth, polled for the gauges."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from watcher.config.schema import QueueConfig
from watcher.errors import ConfigError
from watcher.logs import get_logger
from watcher.metrics import Metrics
from watcher.sqs import DeadLetterQueueUnreachable, QueueInfo, describe_queue, is_fatal
from watcher.worker.health import Readiness

_log = get_logger("watcher.queue")


async def connect(
    sqs: Any, queue: QueueConfig, metrics: Metrics, readiness: Readiness, stop: asyncio.Event
) -> QueueInfo | None:
    """Find the queue and its DLQ, retrying transient failures until it answers or ``stop`` is set
    (then None). A missing queue or DLQ, or a refusal, is a ConfigError."""
    failures = 0
    while not stop.is_set():
        try:
            info = await describe_queue(sqs, queue)
            readiness.ok()
            return info
        except DeadLetterQueueUnreachable as exc:
            raise ConfigError([f"queue {queue.url or queue.name}: {exc}"]) from None
        except Exception as exc:
            if is_fatal(exc):
                raise ConfigError([f"queue {queue.url or queue.name}: {exc}"]) from None
            failures += 1
            delay = poll_backoff(failures)
            metrics.errors.labels("connect").inc()
            readiness.failed(str(exc))
            _log.warning("queue not reachable; retrying", error=str(exc), retry_in_seconds=round(delay, 1))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    return None


def poll_backoff(failures: int) -> float:
    """The wait after ``failures`` failed calls in a row to reach or receive from the queue."""
    return float(min(30.0, 0.5 * 2 ** min(failures, 6)) * random.uniform(0.8, 1.2))


class QueueDepthPoller:
    """Refreshes ``watcher_sqs_queue_messages{state}`` and ``watcher_sqs_dlq_messages`` every
    ``interval`` seconds: one GetQueueAttributes for each queue per poll, sent together.

    The source queue's answer feeds readiness; the DLQ's does not (a worker allowed to send to its DLQ
    but not to read its attributes still works): a failure there is counted, logged when it starts and
    when it ends, and leaves the gauge at its last value (NaN until the DLQ first answers)."""

    _STATES: ClassVar[dict[str, str]] = {
        "visible": "ApproximateNumberOfMessages",
        "in_flight": "ApproximateNumberOfMessagesNotVisible",
        "delayed": "ApproximateNumberOfMessagesDelayed",
    }

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        interval: float,
        metrics: Metrics,
        readiness: Readiness,
        dlq_url: str | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._interval = interval
        self._metrics = metrics
        self._readiness = readiness
        self._dlq_failing = False

    async def poll_once(self) -> None:
        if self._dlq_url is None:
            await self._poll_queue()
        else:
            await asyncio.gather(self._poll_queue(), self._poll_dlq(self._dlq_url))

    async def _attributes(self, url: str) -> dict[str, str]:
        response = await self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(self._STATES.values()))
        attributes: dict[str, str] = response.get("Attributes", {})
        return attributes

    async def _poll_queue(self) -> None:
        try:
            attributes = await self._attributes(self._queue_url)
        except (ClientError, BotoCoreError) as exc:
            self._metrics.errors.labels("queue_attributes").inc()
            self._readiness.failed(str(exc))
            _log.warning("GetQueueAttributes failed", error=str(exc))
            return
        self._readiness.ok()
        for state, name in self._STATES.items():
            self._metrics.queue_messages.labels(state).set(int(attributes.get(name, 0)))

    async def _poll_dlq(self, url: str) -> None:
        try:
            attributes = await self._attributes(url)
        except (ClientError, BotoCoreError) as exc:
            self._metrics.errors.labels("queue_attributes").inc()
            if not self._dlq_failing:
                _log.warning("GetQueueAttributes of the DLQ failed; its depth is unknown", dlq_url=url, error=str(exc))
            self._dlq_failing = True
            return
        if self._dlq_failing:
            _log.info("GetQueueAttributes of the DLQ recovered", dlq_url=url)
        self._dlq_failing = False
        self._metrics.dlq_messages.set(sum(int(attributes.get(name, 0)) for name in self._STATES.values()))

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self._interval)
