"""Outcomes -> what is done to each record -> the function's answer (watcher.outcome's
``batch_item_failures``):

- ``ok``: nothing; not listed, so Lambda deletes it;
- ``permanent``: sent to the DLQ with the worker's ``watcher.*`` attributes and not listed, so it is
  deleted rather than retried in vain (if the DLQ cannot be reached: retried as below);
- ``retry`` (a given-up record too): the worker's backoff through ChangeMessageVisibility, listed;
- never started: made visible again at once, listed.

Each record's line (``message dead-lettered``, ``message will be retried``) is written in the
record's own log context, as the worker writes it. What is not settled by ``until`` stays listed:
nothing is deleted that was not done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from watcher.config.schema import WorkerConfig
from watcher.lambda_.batch import RecordResult
from watcher.lambda_.queues import Queues
from watcher.lambda_.records import SqsRecord
from watcher.logs import get_logger
from watcher.metrics import Metrics
from watcher.outcome import batch_item_failures
from watcher.settle_policy import settle_failure

_log = get_logger("watcher.lambda")


class Settler:
    def __init__(self, queues: Queues, worker: WorkerConfig, metrics: Metrics) -> None:
        self._queues = queues
        self._worker = worker
        self._metrics = metrics

    async def settle(self, results: Sequence[RecordResult], until: float) -> dict[str, Any]:
        """Carry the outcomes out by ``until`` (the event loop's clock); the response for Lambda."""
        loop = asyncio.get_running_loop()
        done = [result.outcome is not None and result.outcome.status == "ok" for result in results]
        jobs: dict[asyncio.Task[bool], int] = {}
        for index, result in enumerate(results):
            if result.outcome is not None and not done[index]:
                jobs[loop.create_task(self._settle(result), context=result.context)] = index
        waiting = [r.record for r in results if not r.started]
        fifo = any(result.record.fifo for result in results)
        tasks: list[asyncio.Task[Any]] = [*jobs]
        if waiting:
            failed_before = fifo and not all(done[: len(results) - len(waiting)])
            why = "a record before them in the FIFO batch failed" if failed_before else "the function's time ran out"
            tasks.append(loop.create_task(self._hand_back(waiting, why)))
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=max(0.0, until - loop.time()))
            for task in late:  # a call still under way stays listed: the record comes back
                task.cancel()
            if late:
                _log.warning("time ran out while settling records: they stay listed", unsettled=len(late))
        for task, index in jobs.items():
            if not task.done() or task.cancelled():
                continue  # late: stays listed
            if (error := task.exception()) is not None:  # a bug of ours
                self._metrics.errors.labels("settle").inc()
                _log.error(
                    "settling a record failed: it stays listed",
                    message_id=results[index].record.message_id,
                    error=f"{type(error).__name__}: {error}",
                )
            else:
                done[index] = task.result()
        self._metrics.deleted.inc(sum(done))  # by Lambda, once the function returns
        return batch_item_failures(((r.record.message_id, d) for r, d in zip(results, done, strict=True)), fifo=fifo)

    async def _settle(self, result: RecordResult) -> bool:
        """True when the record may be deleted (it was dead-lettered)."""
        record, outcome, queues = result.record, result.outcome, self._queues
        assert outcome is not None

        async def dead_letter() -> str | None:
            return await queues.dead_letter(record, outcome)

        async def delay(seconds: int) -> bool:
            return await queues.delay(record, seconds)

        async def max_receive_count() -> int | None:
            queue = await queues.queue(record.source_arn)
            return queue.max_receive_count if queue else None

        return await settle_failure(
            outcome,
            record.receive_count,
            worker=self._worker,
            metrics=self._metrics,
            dead_letter=dead_letter,
            delay=delay,
            max_receive_count=max_receive_count,
        )

    async def _hand_back(self, records: Sequence[SqsRecord], why: str) -> None:
        handed = await self._queues.hand_back(records)
        self._metrics.returned.inc(handed)
        _log.warning(
            "records not started: handed back",
            why=why,
            records=len(records),
            handed_back=handed,
            message_ids=[record.message_id for record in records],
        )
