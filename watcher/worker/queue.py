"""The source queue: its URL, its dead-letter queue, and its depth for the gauges."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from watcher.config import QueueConfig
from watcher.errors import ConfigError
from watcher.logs import get_logger
from watcher.metrics import Metrics, Readiness

_log = get_logger("watcher.queue")


@dataclass(frozen=True, slots=True)
class QueueInfo:
    url: str
    arn: str
    dlq_url: str | None
    max_receive_count: int | None


def arn_to_name_and_account(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    if len(parts) < 6:
        raise ValueError(f"not an SQS ARN: {arn}")
    return parts[5], parts[4]


async def describe_queue(sqs: Any, queue: QueueConfig) -> QueueInfo:
    """Resolve the queue URL and find its DLQ: ``queue.dlq_url`` if set, else its RedrivePolicy."""
    url = queue.url
    if not url:
        url = (await sqs.get_queue_url(QueueName=queue.name))["QueueUrl"]
    attributes = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"]))[
        "Attributes"
    ]
    dlq_url = queue.dlq_url
    max_receive_count = None
    policy_text = attributes.get("RedrivePolicy")
    if policy_text:
        policy = json.loads(policy_text)
        max_receive_count = int(policy.get("maxReceiveCount", 0)) or None
        if not dlq_url and policy.get("deadLetterTargetArn"):
            name, account = arn_to_name_and_account(policy["deadLetterTargetArn"])
            dlq_url = (await sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account))["QueueUrl"]
    return QueueInfo(url, attributes.get("QueueArn", ""), dlq_url, max_receive_count)


def require_dead_letter_queue(info: QueueInfo) -> str:
    if info.dlq_url is None:
        raise ConfigError(
            [
                f"queue {info.url} has no RedrivePolicy and queue.dlq_url is not set: without a "
                "dead-letter queue a bad message could only be retried forever or deleted"
            ]
        )
    return info.dlq_url


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
