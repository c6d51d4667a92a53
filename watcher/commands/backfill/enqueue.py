"""Where matched objects go: ``QueueSender`` sends their notifications with SendMessageBatch, ten per
call and several calls in flight, at most ``rate`` objects a second; ``DirectRunner`` runs their units
in this process through the same dispatcher as the worker (``--direct``). Both report each finished
batch to the checkpoint, and failures to the caller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from watcher.app import App
from watcher.commands.backfill.events import ExistingObject
from watcher.dispatch import Directives

BATCH = 10  # SQS's maximum per SendMessageBatch
_ATTEMPTS = 3
Batch = list[ExistingObject]
Finished = Callable[[int, Batch, int], None]  # (batch index, the batch, how many failed)


class RateLimit:
    """At most ``rate`` objects a second on average (None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()

    async def take(self, count: int) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        wait, self._next = self._next - now, max(self._next, now) + count * self._interval
        if wait > 0:
            await asyncio.sleep(wait)


class _Pipeline:
    """Batches handed to ``workers`` tasks through a bounded queue: listing never runs far ahead."""

    def __init__(self, workers: int, finished: Finished, rate: float | None) -> None:
        self._queue: asyncio.Queue[tuple[int, Batch] | None] = asyncio.Queue(maxsize=2 * workers)
        self._finished = finished
        self._rate = RateLimit(rate)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(workers)]

    async def put(self, index: int, batch: Batch) -> None:
        await self._queue.put((index, batch))

    async def close(self) -> None:
        """Let every batch put so far finish, then stop the workers."""
        for _ in self._tasks:
            await self._queue.put(None)
        await asyncio.gather(*self._tasks)

    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            index, batch = item
            await self._rate.take(len(batch))
            self._finished(index, batch, await self.handle(batch))

    async def handle(self, batch: Batch) -> int:
        """Send or run a batch; return how many of it failed."""
        raise NotImplementedError


class QueueSender(_Pipeline):
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        region: str,
        attributes: dict[str, dict[str, str]],
        finished: Finished,
        *,
        in_flight: int = 16,
        rate: float | None = None,
    ) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._region = region
        self._attributes = attributes
        self._fifo = queue_url.endswith(".fifo")
        self.errors: list[str] = []
        super().__init__(in_flight, finished, rate)

    async def handle(self, batch: Batch) -> int:
        entries = {str(i): self._entry(str(i), item) for i, item in enumerate(batch)}
        for attempt in range(_ATTEMPTS):
            try:
                response = await self._sqs.send_message_batch(QueueUrl=self._url, Entries=list(entries.values()))
            except (ClientError, BotoCoreError) as exc:
                self._note(f"SendMessageBatch failed (attempt {attempt + 1}): {exc}")
            else:
                for ok in response.get("Successful", []):
                    entries.pop(ok["Id"], None)
                for failed in response.get("Failed", []):
                    self._note(f"{failed.get('Code')}: {failed.get('Message')} (attempt {attempt + 1})")
            if not entries:
                return 0
            await asyncio.sleep(0.2 * 2**attempt)
        return len(entries)

    def _entry(self, entry_id: str, item: ExistingObject) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": entry_id,
            "MessageBody": item.notification(self._region),
            "MessageAttributes": self._attributes,
        }
        if self._fifo:  # one group per object: no ordering between objects to keep
            record = item.record()
            entry.update(MessageGroupId=record.request_id, MessageDeduplicationId=record.request_id)
        return entry

    def _note(self, error: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(error)


class DirectRunner(_Pipeline):
    """``--direct``: every unit runs here, each object in a task of its own (one line per message, as
    in the worker); at most ``concurrency`` objects at once."""

    def __init__(
        self, app: App, region: str, directives: Directives, finished: Finished, *, concurrency: int, rate: float | None
    ) -> None:
        self._app = app
        self._region = region
        self._directives = directives
        self.errors: list[str] = []
        super().__init__(max(1, concurrency // BATCH), finished, rate)
        self._gate = asyncio.Semaphore(concurrency)

    async def handle(self, batch: Batch) -> int:
        outcomes = await asyncio.gather(*(asyncio.create_task(self._run(item)) for item in batch))
        return sum(not ok for ok in outcomes)

    async def _run(self, item: ExistingObject) -> bool:
        async with self._gate:
            message_id = f"backfill:{item.bucket}/{item.key}"
            outcome = await self._app.dispatcher.process(
                item.notification(self._region), message_id, 1, self._directives
            )
        if outcome.status != "ok" and len(self.errors) < 20:
            self.errors.append(f"s3://{item.bucket}/{item.key}: {outcome.status}: {outcome.reason}")
        return outcome.status == "ok"
