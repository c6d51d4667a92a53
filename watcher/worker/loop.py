"""The worker: pollers that receive only what they have capacity for, one task per message, and a
graceful shutdown. The per-message pipeline itself is watcher.dispatch's (built by watcher.app); this
module carries out the action watcher.outcome decides: delete / retry with backoff / dead-letter."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from typing import Any

from botocore.config import Config as BotoConfig

from watcher.app import App
from watcher.aws_async import aio_client_kwargs, aio_session
from watcher.config.schema import Config
from watcher.dispatch import Directives, Dispatcher
from watcher.logs import bind_log_fields, get_logger
from watcher.metrics import Metrics
from watcher.outcome import MessageOutcome, dead_letter_request
from watcher.settle_policy import log_message_done, settle_failure
from watcher.sqs import QueueInfo, require_dead_letter_queue
from watcher.sqs_settle import change_visibility, send_to_dead_letter_queue
from watcher.worker.acks import BatchDeleter
from watcher.worker.capacity import Capacity
from watcher.worker.health import MetricsServer, Readiness, bind_scrape_time_gauges
from watcher.worker.heartbeat import VisibilityKeeper
from watcher.worker.queue import QueueDepthPoller, connect, poll_backoff

_log = get_logger("watcher.worker")
_RECEIVE_BATCH = 10  # SQS maximum per ReceiveMessage
_CAPACITY_LINGER = 0.1  # seconds to gather freed slots into one receive
_PENDING_DELETES_PER_SLOT = 2  # deletes queued or under way, per max_in_flight slot
_SYSTEM_ATTRIBUTES = ["ApproximateReceiveCount", "SentTimestamp", "MessageGroupId"]


class Worker:
    def __init__(self, config: Config, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.app = App(config, self.metrics)
        # Idle pollers call SQS every wait_time_seconds, the depth poller every queue_poll_seconds.
        self.readiness = Readiness(
            window=2 * max(config.queue.wait_time_seconds, config.metrics.queue_poll_seconds) + 15
        )
        self.capacity = Capacity(config.queue.max_in_flight)
        self.metrics_port: int | None = None
        self.started = asyncio.Event()  # set once the queue answered, the DLQ is known and receiving began
        self.processed = 0  # messages whose handling ended (settled, or handed back at shutdown)
        self._stop = asyncio.Event()
        self._messages: set[asyncio.Task[None]] = set()
        self._deletes_awaited = 0  # messages done whose task ended, their delete not yet answered
        self._sent_times: dict[str, float] = {}  # receipt handle -> SentTimestamp (s) of each message held
        self.metrics.init_routes((route.name, route.handler.type) for route in config.routes)
        self.metrics.max_in_flight.set(config.queue.max_in_flight)
        bind_scrape_time_gauges(self.metrics, self.readiness, self._sent_times)
        self._sqs: Any = None
        self._queue: QueueInfo | None = None
        self._dlq_url = ""
        self._keeper: VisibilityKeeper | None = None
        self._deleter: BatchDeleter | None = None
        self._dispatcher: Dispatcher | None = None

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def in_flight(self) -> int:
        """Messages received and not yet settled (an ``ok`` one until its delete is answered)."""
        return len(self._messages) + self._deletes_awaited

    async def run(self) -> None:
        """Run until ``request_stop``; then drain within the grace period and return."""
        cfg = self.config
        pollers = math.ceil(cfg.queue.max_in_flight / _RECEIVE_BATCH)
        server: MetricsServer | None = None
        if cfg.metrics.port:
            server = MetricsServer(self.metrics, self.readiness)
            self.metrics_port = server.start(cfg.metrics.host, cfg.metrics.port)
        kwargs = aio_client_kwargs(
            cfg.aws,
            pool=cfg.queue.max_in_flight + pollers + 10,
            read_timeout=cfg.queue.wait_time_seconds + 30,
        )
        # Our requests are built by this module, always the same few shapes: skip botocore's
        # per-call validation of them against the service model.
        kwargs["config"] = kwargs["config"].merge(BotoConfig(parameter_validation=False))
        try:
            async with aio_session(cfg.aws).create_client("sqs", **kwargs) as sqs:
                self._sqs = sqs
                self._queue = await connect(sqs, cfg.queue, self.metrics, self.readiness, self._stop)
                if self._queue is None:
                    return  # stopped before the queue answered
                self._dlq_url = require_dead_letter_queue(self._queue)
                await self.app.start()
                self._dispatcher = self.app.dispatcher
                self._keeper = VisibilityKeeper(sqs, self._queue.url, cfg.queue.visibility_timeout, self.metrics)
                # Slots are freed before the delete round trip, so the deletes pending are bounded
                # instead (1 x max_in_flight was reached at every other receive in the benchmark).
                # The worker holds at most 3 x max_in_flight received messages.
                self._deleter = BatchDeleter(
                    sqs, self._queue.url, self.metrics, max_pending=_PENDING_DELETES_PER_SLOT * cfg.queue.max_in_flight
                )
                depth = QueueDepthPoller(
                    sqs, self._queue.url, cfg.metrics.queue_poll_seconds, self.metrics, self.readiness, self._dlq_url
                )
                background = [
                    asyncio.create_task(self._keeper.run(), name="heartbeat"),
                    asyncio.create_task(self._deleter.run(), name="deleter"),
                    asyncio.create_task(depth.run(), name="queue-depth"),
                ]
                if self.app.idempotency is not None:  # leases of running units, renewed until they end
                    background.append(asyncio.create_task(self.app.idempotency.keep_leases(), name="leases"))
                receivers = [asyncio.create_task(self._poll(i), name=f"poller-{i}") for i in range(pollers)]
                _log.info(
                    "worker started",
                    queue_url=self._queue.url,
                    dlq_url=self._dlq_url,
                    max_receive_count=self._queue.max_receive_count,
                    max_in_flight=cfg.queue.max_in_flight,
                    pollers=pollers,
                    routes=[r.name for r in cfg.routes],
                    metrics_port=self.metrics_port,
                    event_loop=type(asyncio.get_running_loop()).__module__.partition(".")[0],
                )
                self.started.set()
                await self._stop.wait()
                await self._shutdown(receivers)
                await self._deleter.drain()  # the deletes' answers (and the messages' lines) before the last line
                _log.info("worker stopped")
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
        finally:
            await self.app.close()
            if server is not None:
                server.stop()

    async def _poll(self, index: int) -> None:
        assert self._queue is not None and self._keeper is not None
        cfg = self.config.queue
        failures = 0
        while not self.stopping:
            slots = await self.capacity.acquire_up_to(_RECEIVE_BATCH, linger=_CAPACITY_LINGER)
            try:
                response = await self._sqs.receive_message(
                    QueueUrl=self._queue.url,
                    MaxNumberOfMessages=slots,
                    WaitTimeSeconds=cfg.wait_time_seconds,
                    VisibilityTimeout=cfg.visibility_timeout,
                    MessageSystemAttributeNames=_SYSTEM_ATTRIBUTES,
                    MessageAttributeNames=["All"],
                )
            except asyncio.CancelledError:
                self.capacity.release(slots)
                raise
            except Exception as exc:  # transient SQS/network errors never kill the worker
                self.capacity.release(slots)
                failures += 1
                delay = poll_backoff(failures)
                self.metrics.errors.labels("receive").inc()
                self.readiness.failed(str(exc))
                _log.warning(
                    "receive failed; backing off",
                    poller=index,
                    error=str(exc),
                    retry_in_seconds=round(delay, 1),
                    consecutive_failures=failures,
                )
                await asyncio.sleep(delay)
                continue
            if failures:
                _log.info("receive recovered", poller=index, after_failures=failures)
            failures = 0
            self.readiness.ok()
            messages = response.get("Messages", [])
            self.capacity.release(slots - len(messages))
            if not messages:
                if cfg.wait_time_seconds == 0:
                    await asyncio.sleep(1.0)  # short polling on an empty queue: don't spin
                continue
            self._start(messages)

    def _start(self, messages: list[dict[str, Any]]) -> list[asyncio.Task[None]]:
        """Count and track the messages of one receive (their slots already taken) and start a task
        for each."""
        assert self._keeper is not None
        self.metrics.received.inc(len(messages))
        self.metrics.in_flight.inc(len(messages))  # each leaves it when its slot is given back
        received_at = time.time()
        tasks = []
        for message in messages:
            self._keeper.track(message["MessageId"], message["ReceiptHandle"])
            task = asyncio.create_task(self._handle_message(message, received_at))
            self._messages.add(task)
            task.add_done_callback(self._messages.discard)
            tasks.append(task)
        return tasks

    async def _handle_message(self, message: dict[str, Any], received_at: float) -> None:
        assert self._keeper is not None and self._dispatcher is not None and self._deleter is not None
        message_id = message["MessageId"]
        attributes = message.get("Attributes", {})
        receive_count = int(attributes.get("ApproximateReceiveCount", "1"))
        if "SentTimestamp" in attributes:
            sent = int(attributes["SentTimestamp"]) / 1000
            self.metrics.lag.observe(max(0.0, received_at - sent))
            self._sent_times[message["ReceiptHandle"]] = sent
        # No unbinding needed: this task runs in its own copy of the context, which ends with it.
        bind_log_fields(message_id=message_id, receive_count=receive_count)
        holds_slot = heartbeat = True
        delete_awaited = False
        try:
            try:
                directives = Directives.from_attributes(message.get("MessageAttributes"))
                outcome = await self._dispatcher.process(message["Body"], message_id, receive_count, directives)
            except asyncio.CancelledError:
                await asyncio.shield(self._hand_back(message))
                raise
            except Exception as exc:  # a bug of ours: retry the message rather than lose or pin it
                _log.exception("internal error while dispatching")
                self.metrics.errors.labels("dispatch").inc()
                outcome = MessageOutcome("retry", f"internal error: {type(exc).__name__}: {exc}")
            if self._keeper.lost(message_id):
                _log.warning("message was redelivered elsewhere while in flight; acknowledging anyway")
            await self._keeper.untrack(message_id)  # heartbeat ends before any ack or backoff
            heartbeat = False
            if outcome.status == "ok":
                # Every unit succeeded: queue the delete and give the slot back at once, so the next
                # receive overlaps the delete round trip. When too many deletes are pending already,
                # the slot is kept while waiting for room (in _settle): deletes cannot pile up.
                # This task ends too: the delete's answer is logged by a callback, which runs in a
                # copy of this task's context (its log fields).
                deleted = self._deleter.submit(message_id, message["ReceiptHandle"])
                if deleted is not None:
                    holds_slot = False
                    self.metrics.in_flight.dec()
                    self.capacity.release(1)
                    delete_awaited = True
                    self._deletes_awaited += 1
                    deleted.add_done_callback(functools.partial(self._delete_answered, message, outcome))
                    return
            await asyncio.shield(self._settle(message, outcome, receive_count))
        finally:
            if holds_slot:
                self.metrics.in_flight.dec()
                self.capacity.release(1)
            if not delete_awaited:
                self._settled(message)
            if heartbeat:  # ended early (cancelled, or our bug): never leave a message extended forever
                await self._keeper.untrack(message_id)

    def _delete_answered(self, message: dict[str, Any], outcome: MessageOutcome, answer: asyncio.Future[bool]) -> None:
        self._deletes_awaited -= 1
        self._settled(message)
        _log_deleted(outcome, not answer.cancelled() and answer.exception() is None and answer.result())

    def _settled(self, message: dict[str, Any]) -> None:
        self._sent_times.pop(message["ReceiptHandle"], None)
        self.processed += 1

    async def _settle(self, message: dict[str, Any], outcome: MessageOutcome, receive_count: int) -> None:
        assert self._queue is not None and self._deleter is not None
        queue, deleter = self._queue, self._deleter
        message_id, receipt = message["MessageId"], message["ReceiptHandle"]
        if outcome.status == "ok":
            _log_deleted(outcome, await deleter.delete(message_id, receipt))
            return

        async def dead_letter() -> str | None:
            request = dead_letter_request(
                self._dlq_url,
                body=message["Body"],
                message_id=message_id,
                own_attributes=message.get("MessageAttributes") or {},
                group_id=message.get("Attributes", {}).get("MessageGroupId"),
                outcome=outcome,
                receive_count=receive_count,
            )
            sent = await send_to_dead_letter_queue(self._sqs, request, self.metrics)
            return self._dlq_url if sent else None

        async def delete_source() -> bool:
            return await deleter.delete(message_id, receipt)

        async def delay(seconds: int) -> bool:
            return await change_visibility(self._sqs, queue.url, receipt, seconds, self.metrics, message_id)

        async def max_receive_count() -> int | None:
            return queue.max_receive_count

        await settle_failure(
            outcome,
            receive_count,
            worker=self.config.worker,
            metrics=self.metrics,
            dead_letter=dead_letter,
            delay=delay,
            max_receive_count=max_receive_count,
            delete_source=delete_source,
        )

    async def _hand_back(self, message: dict[str, Any]) -> None:
        """Cancelled (shutdown past the grace period): never delete; make it visible again now."""
        assert self._queue is not None and self._keeper is not None
        message_id = message["MessageId"]
        await self._keeper.untrack(message_id)
        await change_visibility(self._sqs, self._queue.url, message["ReceiptHandle"], 0, self.metrics, message_id)
        self.metrics.returned.inc()
        _log.warning("message handed back unfinished at shutdown", message_id=message_id)

    async def _shutdown(self, receivers: list[asyncio.Task[None]]) -> None:
        grace = self.config.worker.shutdown_grace_seconds
        _log.info("shutting down: no more receives", in_flight=self.in_flight, grace_seconds=grace)
        for task in receivers:
            task.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
        if self._messages:
            _, pending = await asyncio.wait(set(self._messages), timeout=grace)
            if pending:
                _log.warning("grace period over: cancelling unfinished work", unfinished=len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)


def _log_deleted(outcome: MessageOutcome, deleted: bool) -> None:
    log_message_done(outcome, "deleted" if deleted else "delete_failed")
