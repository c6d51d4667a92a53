"""Visibility heartbeat: every in-flight message is extended at about half the visibility timeout,
in batches of ten, until it is finished.

A message's heartbeat ends with ``untrack``, which also waits for an extension call already carrying
that message: otherwise the call could land after the retry backoff or the delete and overwrite it
(novu #12437, sqs-consumer #376). A ``ReceiptHandleIsInvalid`` answer means another consumer owns the
message now: it stops being extended and the worker is told through ``lost``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from watcher.logs import get_logger
from watcher.metrics import Metrics
from watcher.sqs import is_gone

_log = get_logger("watcher.heartbeat")


@dataclass(slots=True)
class _Tracked:
    receipt: str
    due: float
    lost: bool = False


class VisibilityKeeper:
    def __init__(self, sqs: Any, queue_url: str, visibility_timeout: int, metrics: Metrics) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._timeout = visibility_timeout
        self._interval = max(1.0, visibility_timeout / 2)
        self._tick = max(0.25, min(1.0, visibility_timeout / 8))
        self._metrics = metrics
        self._tracked: dict[str, _Tracked] = {}
        self._calls: dict[str, asyncio.Task[None]] = {}

    def track(self, message_id: str, receipt: str) -> None:
        self._tracked[message_id] = _Tracked(receipt, time.monotonic() + self._interval)

    def lost(self, message_id: str) -> bool:
        entry = self._tracked.get(message_id)
        return entry is not None and entry.lost

    async def untrack(self, message_id: str) -> None:
        """Stop extending this message, after any extension already under way has returned."""
        self._tracked.pop(message_id, None)
        call = self._calls.get(message_id)
        if call is not None:
            await asyncio.wait({call})

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            now = time.monotonic()
            due = [(mid, t) for mid, t in self._tracked.items() if t.due <= now and not t.lost]
            for start in range(0, len(due), 10):
                chunk = due[start : start + 10]
                call = asyncio.create_task(self._extend(chunk))
                for message_id, _ in chunk:
                    self._calls[message_id] = call
                call.add_done_callback(functools.partial(self._forget, [m for m, _ in chunk]))

    def _forget(self, message_ids: list[str], call: asyncio.Task[None]) -> None:
        for message_id in message_ids:
            if self._calls.get(message_id) is call:
                del self._calls[message_id]

    async def _extend(self, chunk: list[tuple[str, _Tracked]]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": t.receipt, "VisibilityTimeout": self._timeout}
            for i, (_, t) in enumerate(chunk)
        ]
        try:
            response = await self._sqs.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            # Try again at the next tick: half the timeout is still left.
            self._metrics.errors.labels("heartbeat").inc()
            _log.warning("visibility extension failed; retrying", error=str(exc), messages=len(chunk))
            return
        now = time.monotonic()
        for ok in response.get("Successful", []):
            _, tracked = chunk[int(ok["Id"])]
            tracked.due = now + self._interval
            self._metrics.visibility_extensions.inc()
        for failed in response.get("Failed", []):
            message_id, tracked = chunk[int(failed["Id"])]
            if is_gone(failed):
                tracked.lost = True
                _log.warning(
                    "heartbeat: the receipt handle is no longer ours; another consumer owns the message",
                    message_id=message_id,
                    code=failed.get("Code"),
                )
            else:
                self._metrics.errors.labels("heartbeat").inc()
                _log.warning(
                    "visibility extension refused; retrying",
                    message_id=message_id,
                    code=failed.get("Code"),
                )
