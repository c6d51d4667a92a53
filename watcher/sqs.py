"""One home for SQS knowledge that the worker, the tools and the Lambda entry point share: which
error codes mean what, ARN and RedrivePolicy parsing, and finding a queue and its dead-letter queue.

Discovery is written once, as a sequence of requests (``_discover``), and driven either by an
asynchronous client (the worker) or a blocking one (``watcher check``, ``watcher dlq``).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from watcher.config.schema import QueueConfig
from watcher.errors import ConfigError, error_code

# The receipt handle is no longer ours: the message expired or was delivered to another consumer.
_GONE_CODES = frozenset({"ReceiptHandleIsInvalid", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"})
# Retrying cannot help: the queue is missing or we may not use it.
FATAL_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "AccessDenied"})


def is_gone(error: BaseException | dict[str, Any]) -> bool:
    """True when SQS says the receipt handle is no longer ours (a ClientError or a batch entry)."""
    code = error_code(error)
    return code in _GONE_CODES or (code is not None and code.endswith("ReceiptHandleIsInvalid"))


def is_fatal(error: BaseException) -> bool:
    return error_code(error) in FATAL_QUEUE_CODES


def arn_to_name_and_account(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    if len(parts) < 6:
        raise ValueError(f"not an SQS ARN: {arn}")
    return parts[5], parts[4]


def queue_name_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class RedrivePolicy:
    dead_letter_arn: str | None
    max_receive_count: int | None


def redrive_policy(attributes: dict[str, str]) -> RedrivePolicy | None:
    text = attributes.get("RedrivePolicy")
    if not text:
        return None
    policy = json.loads(text)
    return RedrivePolicy(policy.get("deadLetterTargetArn") or None, int(policy.get("maxReceiveCount", 0)) or None)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    url: str
    arn: str
    dlq_url: str | None
    max_receive_count: int | None
    dlq_configured: bool = False  # the DLQ is queue.dlq_url, not the RedrivePolicy's target
    fifo: bool = False


class DeadLetterQueueUnreachable(Exception):
    """The queue answered, but the DLQ its RedrivePolicy names did not."""

    def __init__(self, arn: str, cause: BaseException) -> None:
        super().__init__(f"dead-letter queue {arn} from the RedrivePolicy: not reachable: {cause}")
        self.arn = arn
        self.cause = cause


Request = tuple[str, dict[str, Any]]  # (client method, arguments)


def _discover(queue: QueueConfig) -> Generator[Request, dict[str, Any], QueueInfo]:
    url = queue.url
    if not url:
        url = (yield "get_queue_url", {"QueueName": queue.name})["QueueUrl"]
    answer = yield "get_queue_attributes", {"QueueUrl": url, "AttributeNames": ["QueueArn", "RedrivePolicy"]}
    attributes = answer["Attributes"]
    policy = redrive_policy(attributes)
    dlq_url = queue.dlq_url
    if not dlq_url and policy is not None and policy.dead_letter_arn:
        name, account = arn_to_name_and_account(policy.dead_letter_arn)
        try:
            dlq_url = (yield "get_queue_url", {"QueueName": name, "QueueOwnerAWSAccountId": account})["QueueUrl"]
        except Exception as exc:
            if is_fatal(exc):  # the queue is fine: say it is the DLQ that is missing
                raise DeadLetterQueueUnreachable(policy.dead_letter_arn, exc) from exc
            raise
    return QueueInfo(
        str(url),
        attributes.get("QueueArn", ""),
        dlq_url,
        policy.max_receive_count if policy else None,
        dlq_configured=bool(queue.dlq_url),
        fifo=str(url).endswith(".fifo"),
    )


async def describe_queue(sqs: Any, queue: QueueConfig) -> QueueInfo:
    """Resolve the queue URL and find its DLQ (``queue.dlq_url``, else the RedrivePolicy's target),
    with an aiobotocore client."""
    steps = _discover(queue)
    request = next(steps)
    while True:
        try:
            answer = await getattr(sqs, request[0])(**request[1])
        except Exception as exc:
            request = steps.throw(exc)  # the step may say what failed; it ends the discovery
            continue
        try:
            request = steps.send(answer)
        except StopIteration as done:
            info: QueueInfo = done.value
            return info


def describe_queue_blocking(sqs: Any, queue: QueueConfig) -> QueueInfo:
    """The same with a blocking boto3 client."""
    steps = _discover(queue)
    request = next(steps)
    while True:
        try:
            answer = getattr(sqs, request[0])(**request[1])
        except Exception as exc:
            request = steps.throw(exc)
            continue
        try:
            request = steps.send(answer)
        except StopIteration as done:
            info: QueueInfo = done.value
            return info


def require_dead_letter_queue(info: QueueInfo) -> str:
    if info.dlq_url is None:
        raise ConfigError(
            [
                f"queue {info.url} has no RedrivePolicy and queue.dlq_url is not set: without a "
                "dead-letter queue a bad message could only be retried forever or deleted"
            ]
        )
    return info.dlq_url
