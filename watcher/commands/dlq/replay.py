"""``watcher dlq replay``: send selected dead letters back to the source queue (or another), body and
attributes unchanged plus ``watcher.replayed_at`` (and ``watcher.ignore_idempotency`` for a
deliberate re-run), one at a time at ``--rate``, each deleted from the DLQ only once its send
succeeded.

Ctrl-C stops after the message under way: nothing is lost, and nothing is sent twice but, at worst,
that one message (the idempotency store then runs its units once). The messages not replayed are
made visible again at the end.
"""

from __future__ import annotations

import argparse
import signal
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from watcher.app import load_config
from watcher.commands.dlq.inspect import selection_of
from watcher.commands.dlq.messages import DeadLetter, DeadLetterQueue
from watcher.commands.progress import Progress
from watcher.dispatch import ATTR_IGNORE_IDEMPOTENCY
from watcher.outcome import ATTR_ERROR, ATTR_RECEIVE_COUNT, ATTR_ROUTE, MAX_MESSAGE_ATTRIBUTES

ATTR_REPLAYED_AT = "watcher.replayed_at"
# When a message has no room left for ours (SQS allows 10 attributes), the worker's diagnostics go
# first: the next failure writes them again.
_DROPPABLE = (ATTR_RECEIVE_COUNT, ATTR_ERROR, ATTR_ROUTE)


def replay_attributes(letter: DeadLetter, replayed_at: str, ignore_idempotency: bool) -> dict[str, dict[str, Any]]:
    attributes = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in letter.attributes.items()
    }
    ours = {ATTR_REPLAYED_AT: {"DataType": "String", "StringValue": replayed_at}}
    if ignore_idempotency:
        ours[ATTR_IGNORE_IDEMPOTENCY] = {"DataType": "String", "StringValue": "true"}
    for name in _DROPPABLE:
        if len(attributes) + len(ours) <= MAX_MESSAGE_ATTRIBUTES:
            break
        attributes.pop(name, None)
    return {**attributes, **ours}


def replay_request(letter: DeadLetter, target: str, *, ignore_idempotency: bool) -> dict[str, Any]:
    now = datetime.now(UTC)
    request: dict[str, Any] = {
        "QueueUrl": target,
        "MessageBody": letter.body,
        "MessageAttributes": replay_attributes(letter, now.isoformat(timespec="seconds"), ignore_idempotency),
    }
    if target.endswith(".fifo"):
        request["MessageGroupId"] = letter.system.get("MessageGroupId", "watcher")
        request["MessageDeduplicationId"] = f"{letter.message_id}-{int(now.timestamp() * 1000)}"[:128]
    return request


class _Interrupt:
    """The first Ctrl-C asks to stop after the message under way; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        self._previous = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)


def cmd_replay(args: argparse.Namespace) -> int:
    dlq = DeadLetterQueue(load_config(args.config))
    target = args.to_queue or dlq.source.url
    selection = selection_of(args)
    # The messages read stay hidden while the replay runs: long enough for all of them at this rate.
    visibility = min(43200, int(60 + 1.5 * dlq.depth() / args.rate))
    title = f"{'dry run of a ' if args.dry_run else ''}replay to {target}"
    progress = Progress(title, ("replayed", "failed", "not_deleted"))
    interval, next_send = 1.0 / args.rate, time.monotonic()
    with _Interrupt() as interrupt:
        try:
            for letter in selection.pick(dlq.read(visibility)):
                if interrupt.requested:
                    break
                if args.dry_run:
                    print(f"would replay {letter.message_id} ({letter.route}: {' '.join(letter.objects) or '-'})")
                    progress.advance(replayed=1)
                    continue
                time.sleep(max(0.0, next_send - time.monotonic()))
                next_send = max(next_send + interval, time.monotonic())
                progress.advance(**_replay_one(dlq, letter, target, args.ignore_idempotency))
        finally:
            dlq.release()
            stopped = ["stopped by Ctrl-C after the message under way"] if interrupt.requested else []
            where = ", ".join(selection.description) or "every message"
            progress.close([f"selected: {where}", *stopped, *(["dry run: nothing sent or deleted"] * args.dry_run)])
    return 1 if progress.counts["failed"] else 0


def _replay_one(dlq: DeadLetterQueue, letter: DeadLetter, target: str, ignore_idempotency: bool) -> dict[str, int]:
    try:
        dlq.sqs.send_message(**replay_request(letter, target, ignore_idempotency=ignore_idempotency))
    except (ClientError, BotoCoreError) as exc:  # it stays in the DLQ
        print(f"cannot replay {letter.message_id}: {exc}")
        return {"failed": 1}
    try:
        dlq.sqs.delete_message(QueueUrl=dlq.url, ReceiptHandle=letter.receipt)
    except (ClientError, BotoCoreError) as exc:
        print(f"replayed {letter.message_id} but could not delete it from the DLQ (it may be replayed again): {exc}")
        return {"replayed": 1, "not_deleted": 1}
    dlq.forget(letter)
    return {"replayed": 1}
