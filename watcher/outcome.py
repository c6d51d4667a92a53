"""What happens to a message once its units ran: the ``MessageOutcome`` of dispatch, and the action
it calls for (delete / retry after a delay / dead-letter with the reason), with no SQS client in
sight: the worker's loop, the Lambda entry point and ``watcher dlq`` carry the actions out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from watcher.backoff import equal_jitter
from watcher.config.schema import WorkerConfig
from watcher.envelope import Skip

Status = Literal["ok", "retry", "permanent"]
MAX_REASON = 1000  # characters of the reason kept (the DLQ attribute, log lines)
MAX_VISIBILITY = 43200  # SQS limit: 12 hours
MAX_MESSAGE_ATTRIBUTES = 10  # SQS limit per message
# The attributes a dead-lettered message carries, read back by `watcher dlq`.
ATTR_ERROR = "watcher.error"
ATTR_ROUTE = "watcher.route"
ATTR_RECEIVE_COUNT = "watcher.receive_count"


@dataclass(frozen=True, slots=True)
class UnitResult:
    route: str
    status: Status
    error: str | None = None
    skipped: str | None = None  # why the unit did not run although its status is ok ("duplicate")
    detail: str | None = None  # about the skip, for the log line


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """What should happen to the message: ``ok`` delete, ``retry`` back off, ``permanent`` DLQ."""

    status: Status
    reason: str | None = None
    route: str | None = None  # the route whose failure decided the outcome
    units: list[UnitResult] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


def combine(results: Sequence[UnitResult], skipped: list[Skip]) -> MessageOutcome:
    """A permanent failure of any unit decides the message (DLQ); else any retry; else success."""
    order: tuple[Status, ...] = ("permanent", "retry")
    for wanted in order:
        failures = [r for r in results if r.status == wanted]
        if failures:
            reason = "; ".join(f"route {r.route}: {r.error}" for r in failures)
            return MessageOutcome(wanted, bounded(reason), failures[0].route, list(results), skipped)
    return MessageOutcome("ok", units=list(results), skipped=skipped)


def bounded(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def retry_delay(receive_count: int, worker: WorkerConfig) -> int:
    """The visibility timeout that delays the next delivery of a message that failed
    ``receive_count`` times, in whole seconds: exponential with equal jitter, capped by
    ``retry_max_seconds`` and by SQS's 12 hours."""
    delay = equal_jitter(receive_count, worker.retry_initial_seconds, worker.retry_max_seconds)
    return int(min(MAX_VISIBILITY, max(0, round(delay))))


def attempts_left(max_receive_count: int | None, receive_count: int) -> int | None:
    """Deliveries left before SQS's redrive moves the message to the DLQ (None: no redrive policy)."""
    return None if max_receive_count is None else max(0, max_receive_count - receive_count)


def dead_letter_attributes(
    own_attributes: Mapping[str, Mapping[str, Any]], reason: str, route: str | None, receive_count: int
) -> dict[str, dict[str, Any]]:
    """Our three attributes first, then as many of the message's own (in SendMessage form:
    ``DataType``, ``StringValue`` / ``BinaryValue``) as SQS's limit of 10 allows."""
    attributes: dict[str, dict[str, Any]] = {
        ATTR_ERROR: {"DataType": "String", "StringValue": reason or "unknown"},
        ATTR_ROUTE: {"DataType": "String", "StringValue": route or "-"},
        ATTR_RECEIVE_COUNT: {"DataType": "Number", "StringValue": str(receive_count)},
    }
    for name, value in own_attributes.items():
        if len(attributes) >= MAX_MESSAGE_ATTRIBUTES or name in attributes:
            continue
        attributes[name] = {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
    return attributes


def dead_letter_request(
    dlq_url: str,
    *,
    body: str,
    message_id: str,
    own_attributes: Mapping[str, Mapping[str, Any]],
    group_id: str | None,
    outcome: MessageOutcome,
    receive_count: int,
) -> dict[str, Any]:
    """The SendMessage request that puts a failed message in the DLQ, body unchanged, with its reason.
    A FIFO DLQ gets the message's group and its id as the deduplication id."""
    request: dict[str, Any] = {
        "QueueUrl": dlq_url,
        "MessageBody": body,
        "MessageAttributes": dead_letter_attributes(own_attributes, outcome.reason or "", outcome.route, receive_count),
    }
    if dlq_url.endswith(".fifo"):
        request["MessageGroupId"] = group_id or "watcher"
        request["MessageDeduplicationId"] = message_id
    return request


def batch_item_failures(records: Iterable[tuple[str, bool]], *, fifo: bool) -> dict[str, list[dict[str, str]]]:
    """The answer of a Lambda function to an SQS event source mapping with ``ReportBatchItemFailures``:
    ``records`` are ``(message id, done)`` in the batch's order, done meaning Lambda may delete the
    record (it succeeded, or it was dead-lettered). Every record not done is listed, to be delivered
    again; from a FIFO queue, the first one not done and every record after it (Lambda's rule: a
    message group keeps its order)."""
    listed: list[str] = []
    for message_id, done in records:
        if not done or (fifo and listed):
            listed.append(message_id)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in listed]}
