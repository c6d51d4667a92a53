"""Reading the dead-letter queue without consuming it: every message is received once with a short
visibility timeout (deduplicated by id: a long read may see a message come back), never deleted
here, and made visible again when the command is done with it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from watcher.aws import client
from watcher.config.schema import Config
from watcher.envelope import parse_body
from watcher.errors import MessageFormatError
from watcher.outcome import ATTR_ERROR, ATTR_RECEIVE_COUNT, ATTR_ROUTE
from watcher.sqs import QueueInfo, describe_queue_blocking, require_dead_letter_queue

REDRIVEN = "(redriven by SQS)"  # the route of a message SQS moved after maxReceiveCount
_EMPTY_RECEIVES = 2  # consecutive receives with nothing new: the queue has been read


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str
    receipt: str
    body: str
    attributes: dict[str, dict[str, Any]]  # the message's attributes, as ReceiveMessage gives them
    system: dict[str, str]  # SentTimestamp, ApproximateReceiveCount, MessageGroupId...

    def _text(self, name: str) -> str | None:
        value = self.attributes.get(name)
        return None if value is None else value.get("StringValue")

    @property
    def from_redrive(self) -> bool:
        """SQS moved it (retries exhausted): it has none of the worker's ``watcher.*`` attributes."""
        return self._text(ATTR_ERROR) is None and self._text(ATTR_ROUTE) is None

    @property
    def route(self) -> str:
        return REDRIVEN if self.from_redrive else (self._text(ATTR_ROUTE) or "-")

    @property
    def error(self) -> str:
        return self._text(ATTR_ERROR) or ("retries exhausted" if self.from_redrive else "")

    @property
    def error_first_line(self) -> str:
        return self.error.splitlines()[0] if self.error else ""

    @property
    def receive_count(self) -> int:
        return int(self._text(ATTR_RECEIVE_COUNT) or self.system.get("ApproximateReceiveCount") or 0)

    @property
    def sent_at(self) -> float:
        return int(self.system.get("SentTimestamp", "0")) / 1000

    def age(self, now: float | None = None) -> float:
        return (now or time.time()) - self.sent_at

    @property
    def objects(self) -> list[str]:
        """The objects its records name (``s3://bucket/key``); empty for a body that is not a notification."""
        try:
            return [record.uri for record in parse_body(self.body).records]
        except MessageFormatError:
            return []

    def summary(self, now: float | None = None) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "age_seconds": round(self.age(now)),
            "route": self.route,
            "receive_count": self.receive_count,
            "error": self.error,
            "objects": self.objects,
        }


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a command takes: every filter given must hold."""

    route: str | None = None
    error_match: re.Pattern[str] | None = None
    older_than: float | None = None  # seconds
    limit: int | None = None
    description: list[str] = field(default_factory=list)

    def wants(self, letter: DeadLetter, now: float) -> bool:
        return (
            (self.route is None or letter.route == self.route)
            and (self.error_match is None or self.error_match.search(letter.error) is not None)
            and (self.older_than is None or letter.age(now) >= self.older_than)
        )

    def pick(self, letters: Iterable[DeadLetter]) -> Iterator[DeadLetter]:
        now, taken = time.time(), 0
        for letter in letters:
            if self.limit is not None and taken >= self.limit:
                return
            if self.wants(letter, now):
                taken += 1
                yield letter


class DeadLetterQueue:
    """The configured queue's DLQ (``queue.dlq_url``, else its RedrivePolicy's target)."""

    def __init__(self, config: Config) -> None:
        self.sqs = client(config.aws, "sqs")
        self.source: QueueInfo = describe_queue_blocking(self.sqs, config.queue)
        self.url = require_dead_letter_queue(self.source)
        self._held: dict[str, str] = {}  # message id -> receipt of what this command keeps hidden

    def attribute(self, name: str) -> str:
        found = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=[name])["Attributes"]
        return str(found.get(name, ""))

    def depth(self) -> int:
        return int(self.attribute("ApproximateNumberOfMessages") or 0)

    def read(self, visibility: int) -> Iterator[DeadLetter]:
        """Every message once, hidden for ``visibility`` seconds from its receipt."""
        seen: set[str] = set()
        empty = 0
        while empty < _EMPTY_RECEIVES:
            response = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                VisibilityTimeout=visibility,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            fresh = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
            empty = 0 if fresh else empty + 1
            # Held before any is yielded: a caller that stops early must give back the whole batch.
            self._held.update((m["MessageId"], m["ReceiptHandle"]) for m in fresh)
            for message in fresh:
                seen.add(message["MessageId"])
                yield DeadLetter(
                    message["MessageId"],
                    message["ReceiptHandle"],
                    message["Body"],
                    message.get("MessageAttributes") or {},
                    message.get("Attributes") or {},
                )

    def forget(self, letter: DeadLetter) -> None:
        """The message left the DLQ (deleted after a replay): nothing to give back."""
        self._held.pop(letter.message_id, None)

    def release(self) -> None:
        """Make every message this command still hides visible again at once (10 per call)."""
        held = list(self._held.items())
        self._held.clear()
        for start in range(0, len(held), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
                for i, (_, receipt) in enumerate(held[start : start + 10])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
