"""The records of one invocation -> their outcomes: each record dispatched in a task of its own
(its log context and one-line summary stay its own, as in the worker), at most ``max_concurrency``
at once, within the time the invocation has.

- From a FIFO queue, one record at a time in the batch's order, stopping at the first that does
  not succeed: Lambda requires the records after a failure to come back too, so they are not run.
- No record starts after ``stop_at``; records still running then are given up (cancelled: an
  idempotency claim is released, the record will be retried) so that the invocation can settle
  and return before Lambda's timeout. Records never started are handed back.

Nothing here talks to SQS: watcher.lambda_.settle carries the outcomes out.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Sequence
from dataclasses import dataclass

from watcher.dispatch import Dispatcher
from watcher.lambda_.records import SqsRecord
from watcher.logs import bind_log_fields, get_logger
from watcher.metrics import Metrics
from watcher.outcome import MessageOutcome
from watcher.settle_policy import log_message_done

_log = get_logger("watcher.lambda")
GAVE_UP = "gave up: the function's time was running out"


@dataclass(frozen=True, slots=True)
class RecordResult:
    record: SqsRecord
    outcome: MessageOutcome | None  # None: never started
    # The record task's log context at its end (message id, the unit's summary): the record's line
    # about what is done to it is written in it.
    context: contextvars.Context | None = None
    gave_up: bool = False

    @property
    def started(self) -> bool:
        return self.outcome is not None


class BatchRun:
    def __init__(self, dispatcher: Dispatcher, metrics: Metrics, max_concurrency: int) -> None:
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._max_concurrency = max_concurrency

    async def process(self, records: Sequence[SqsRecord], stop_at: float) -> list[RecordResult]:
        """The outcome of every record, in order; ``stop_at`` is on the event loop's clock."""
        loop = asyncio.get_running_loop()
        fifo = any(record.fifo for record in records)
        results: list[RecordResult | None] = [None] * len(records)
        running: set[asyncio.Task[RecordResult]] = set()
        order = iter(range(len(records)))
        halted = False

        async def lane() -> None:
            nonlocal halted
            for index in order:  # shared by the lanes: each record is taken once
                if halted or loop.time() >= stop_at:
                    return
                task = loop.create_task(self._record(records[index]))
                running.add(task)
                try:
                    result = await task
                except asyncio.CancelledError:
                    if not task.cancelled():
                        raise
                    return  # cancelled before it began: never started
                finally:
                    running.discard(task)
                results[index] = result
                if fifo and result.outcome is not None and result.outcome.status != "ok":  # a given-up one: "retry"
                    halted = True

        lanes = [loop.create_task(lane()) for _ in range(1 if fifo else min(self._max_concurrency, len(records)))]
        if lanes:
            _, late = await asyncio.wait(lanes, timeout=max(0.0, stop_at - loop.time()))
            if late:
                for task in list(running):
                    task.cancel()
                await asyncio.gather(*late)
        return [result or RecordResult(record, None) for record, result in zip(records, results, strict=True)]

    async def _record(self, record: SqsRecord) -> RecordResult:
        """Dispatch one record in this task's own context; a cancellation gives it up."""
        metrics = self._metrics
        metrics.received.inc()
        metrics.in_flight.inc()
        if record.sent_timestamp_ms is not None:
            metrics.lag.observe(max(0.0, time.time() - record.sent_timestamp_ms / 1000))
        bind_log_fields(message_id=record.message_id, receive_count=record.receive_count)
        gave_up = False
        try:
            outcome = await self._dispatcher.process(
                record.body, record.message_id, record.receive_count, record.directives
            )
        except asyncio.CancelledError:  # our own cancellation at stop_at: the record comes back
            outcome, gave_up = MessageOutcome("retry", GAVE_UP), True
        except Exception as exc:  # a bug of ours: retry the record rather than lose it
            _log.exception("internal error while dispatching")
            metrics.errors.labels("dispatch").inc()
            outcome = MessageOutcome("retry", f"internal error: {type(exc).__name__}: {exc}")
        finally:
            metrics.in_flight.dec()
        if outcome.status == "ok":
            log_message_done(outcome, "deleted_by_lambda")
        return RecordResult(record, outcome, contextvars.copy_context(), gave_up)
