"""Acknowledgements: batched deletes. Each reports success as a bool; failures are logged and counted
here, and a ``ReceiptHandleIsInvalid`` means another consumer owns the message now, not a crash.
Visibility changes and dead-lettering, which the Lambda shim makes too, are in watcher.sqs_settle."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from watcher.logs import get_logger
from watcher.metrics import Metrics
from watcher.sqs import is_gone
from watcher.sqs_settle import ATTEMPTS, pause_before_retry

_log = get_logger("watcher.acks")
_BATCH = 10  # SQS maximum per DeleteMessageBatch


@dataclass(frozen=True, slots=True)
class _PendingDelete:
    message_id: str
    receipt: str
    done: asyncio.Future[bool]


class BatchDeleter:
    """Collects deletes for up to ``linger`` seconds or 10 entries, then sends one
    ``DeleteMessageBatch``; partial failures are retried entry by entry.

    At most ``max_pending`` deletes are queued or under way at once: ``submit`` refuses more and
    ``delete`` waits for room, so a slow or failing SQS holds the worker back instead of letting
    deletes pile up."""

    def __init__(
        self, sqs: Any, queue_url: str, metrics: Metrics, linger: float = 0.02, max_pending: int = 100
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._metrics = metrics
        self._linger = linger
        self._max_pending = max(_BATCH, max_pending)
        self._outstanding = 0  # submitted and not yet resolved
        self._queued: deque[_PendingDelete] = deque()
        self._room = asyncio.Event()
        self._waiter: asyncio.Future[None] | None = None  # the collector, waiting for entries
        self._wake_at = 1  # ... until this many are queued
        self._flushes: set[asyncio.Task[None]] = set()

    def submit(self, message_id: str, receipt: str) -> asyncio.Future[bool] | None:
        """Queue a delete and return the future of its result, or None when ``max_pending`` deletes
        are already pending. Synchronous, so that a caller cannot be cancelled half-way."""
        if self._outstanding >= self._max_pending:
            return None
        self._outstanding += 1
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queued.append(_PendingDelete(message_id, receipt, done))
        waiter = self._waiter
        if waiter is not None and len(self._queued) >= self._wake_at and not waiter.done():
            waiter.set_result(None)
        return done

    async def delete(self, message_id: str, receipt: str) -> bool:
        """Delete (batched), waiting for room first when ``max_pending`` deletes are pending."""
        while (done := self.submit(message_id, receipt)) is None:
            self._room.clear()
            await self._room.wait()
        return await asyncio.shield(done)

    async def run(self) -> None:
        """The collector: wait for a first entry, linger until 10 are queued or ``linger`` has
        passed, then send them in their own flush task and start over."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._queued:
                await self._wait(1, None)
            if len(self._queued) < _BATCH:
                await self._wait(_BATCH, self._linger)
            batch = [self._queued.popleft() for _ in range(min(_BATCH, len(self._queued)))]
            task = loop.create_task(self._flush(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _wait(self, entries: int, at_most: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        self._wake_at = entries
        timer = None if at_most is None else loop.call_later(at_most, _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def drain(self) -> None:
        """Wait for queued and running flushes (called at shutdown, before the client closes)."""
        while self._queued or self._flushes:
            await asyncio.sleep(self._linger)
            if self._flushes:
                await asyncio.gather(*self._flushes, return_exceptions=True)

    def _resolve(self, item: _PendingDelete, deleted: bool) -> None:
        if not item.done.done():
            item.done.set_result(deleted)
            self._outstanding -= 1
            self._room.set()

    async def _flush(self, batch: list[_PendingDelete]) -> None:
        entries = {str(i): item for i, item in enumerate(batch)}
        try:
            await self._send(entries)
        except Exception:  # an odd answer, or a bug of ours: the messages come back, nothing waits
            self._metrics.errors.labels("delete").inc()
            _log.exception("deleting a batch failed", entries=len(entries))
        finally:
            for item in entries.values():
                _log.error(
                    "message not deleted after retries: it will be delivered again",
                    message_id=item.message_id,
                )
                self._resolve(item, False)

    async def _send(self, entries: dict[str, _PendingDelete]) -> None:
        """DeleteMessageBatch with retries; what is deleted or refused leaves ``entries``."""
        for attempt in range(ATTEMPTS):
            if not entries:
                return
            try:
                response = await self._sqs.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": i, "ReceiptHandle": item.receipt} for i, item in entries.items()],
                )
            except (ClientError, BotoCoreError) as exc:
                self._metrics.errors.labels("delete").inc()
                _log.warning(
                    "DeleteMessageBatch failed",
                    error=str(exc),
                    attempt=attempt + 1,
                    entries=len(entries),
                )
                await pause_before_retry(attempt)
                continue
            for ok in response.get("Successful", []):
                item = entries.pop(ok["Id"])
                self._metrics.deleted.inc()
                self._resolve(item, True)
            for failed in response.get("Failed", []):
                item = entries[failed["Id"]]
                if is_gone(failed):
                    entries.pop(failed["Id"])
                    _log.warning(
                        "delete refused: the receipt handle is no longer ours (another consumer owns the message)",
                        message_id=item.message_id,
                        code=failed.get("Code"),
                    )
                    self._resolve(item, False)
                else:
                    self._metrics.errors.labels("delete").inc()
                    _log.warning(
                        "delete failed",
                        message_id=item.message_id,
                        code=failed.get("Code"),
                        detail=failed.get("Message"),
                        attempt=attempt + 1,
                    )
            if entries:
                await pause_before_retry(attempt)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
