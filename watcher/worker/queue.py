"""The source queue's depth, polled for the gauges (finding the queue is watcher.sqs's job)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from watcher.logs import get_logger
from watcher.metrics import Metrics
from watcher.worker.health import Readiness

_log = get_logger("watcher.queue")


class QueueDepthPoller:
    """Refreshes ``watcher_sqs_queue_messages{state}`` every ``interval`` seconds."""

    _STATES: ClassVar[dict[str, str]] = {
        "visible": "ApproximateNumberOfMessages",
        "in_flight": "ApproximateNumberOfMessagesNotVisible",
        "delayed": "ApproximateNumberOfMessagesDelayed",
    }

    def __init__(self, sqs: Any, queue_url: str, interval: float, metrics: Metrics, readiness: Readiness) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._interval = interval
        self._metrics = metrics
        self._readiness = readiness

    async def poll_once(self) -> None:
        try:
            response = await self._sqs.get_queue_attributes(
                QueueUrl=self._queue_url, AttributeNames=list(self._STATES.values())
            )
        except (ClientError, BotoCoreError) as exc:
            self._metrics.errors.labels("queue_attributes").inc()
            self._readiness.failed(str(exc))
            _log.warning("GetQueueAttributes failed", error=str(exc))
            return
        self._readiness.ok()
        attributes = response.get("Attributes", {})
        for state, name in self._STATES.items():
            self._metrics.queue_messages.labels(state).set(int(attributes.get(name, 0)))

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self._interval)
