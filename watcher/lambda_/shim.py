"""What one Lambda execution environment keeps between invocations, made once per cold start: the
configuration, the App (handlers, dispatcher, idempotency store), an event loop, the metrics and
the SQS side. ``Shim.invoke`` is one invocation: records -> outcomes (watcher.lambda_.batch) ->
SQS actions and the ``batchItemFailures`` answer (watcher.lambda_.settle) -> EMF metrics.

Time: the invocation ends at ``context.get_remaining_time_in_millis()``. No record starts later
than ``lambda.reserve_seconds`` before that (a third of the time left at most), records still
running then are given up, and what is not settled shortly before the end stays listed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from typing import IO, Any, Protocol

from watcher.app import App
from watcher.config.schema import Config, LambdaConfig
from watcher.errors import ConfigError
from watcher.lambda_ import IMPORT_STARTED, settings
from watcher.lambda_.batch import BatchRun
from watcher.lambda_.emf import EmfWriter
from watcher.lambda_.queues import Queues
from watcher.lambda_.records import records_of
from watcher.lambda_.settle import Settler
from watcher.logs import bind_log_fields, configure_logging, get_logger
from watcher.metrics import Metrics

_log = get_logger("watcher.lambda")
_RETURN_MARGIN = 0.2  # seconds kept, at most, between the end of settling and the function's end


class LambdaContext(Protocol):
    """What the shim reads of the context object the Lambda runtime passes to the handler."""

    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


class Shim:
    def __init__(self, config: Config, *, emf_stream: IO[bytes] | None = None) -> None:
        self.config = config
        self.settings = config.lambda_ or LambdaConfig()
        self.metrics = Metrics()
        self.app = App(config, self.metrics)
        self.loop = asyncio.new_event_loop()
        self.queues = Queues(config, self.metrics)
        self.emf = EmfWriter(self.metrics.registry, self.settings.metrics_namespace, emf_stream)
        self.loop.run_until_complete(self.app.start())  # handlers created and started once
        self._batch = BatchRun(self.app.dispatcher, self.metrics, self.settings.max_concurrency)
        self._settler = Settler(self.queues, config.worker, self.metrics)
        store = self.app.idempotency
        self._lease = store.lease_seconds if store is not None else None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Shim:
        """The cold start: configuration (watcher.lambda_.settings), logging, the App."""
        try:
            config = settings.load(environ)
        except ConfigError as exc:
            configure_logging("info", "json")
            _log.error("invalid configuration", source=exc.source, problems=exc.problems)
            raise
        configure_logging(config.logging.level, config.logging.format)
        shim = cls(config)
        _log.info(
            "watcher ready",
            config=config.source,
            routes=[route.name for route in config.routes],
            max_concurrency=shim.settings.max_concurrency,
            init_ms=round((time.perf_counter() - IMPORT_STARTED) * 1000, 1),
        )
        return shim

    def invoke(self, event: Any, context: LambdaContext) -> dict[str, Any]:
        """One invocation: the answer for the event source mapping (``batchItemFailures``)."""
        remaining = max(0.0, context.get_remaining_time_in_millis() / 1000)
        try:
            return self.loop.run_until_complete(self._invoke(event, context.aws_request_id, remaining))
        finally:
            self.emf.flush()

    async def _invoke(self, event: Any, request_id: str, remaining: float) -> dict[str, Any]:
        # This task's context is a copy: what is bound here ends with the invocation.
        bind_log_fields(aws_request_id=request_id)
        started = time.perf_counter()
        records = records_of(event)
        self._hold_leases(remaining)
        loop = asyncio.get_running_loop()
        end = loop.time() + remaining
        reserve = min(self.settings.reserve_seconds, remaining / 3)
        results = await self._batch.process(records, stop_at=end - reserve)
        response = await self._settler.settle(results, until=end - min(_RETURN_MARGIN, reserve / 2))
        listed = len(response["batchItemFailures"])
        _log.debug(
            "batch done",
            records=len(records),
            listed=listed,
            not_started=sum(1 for r in results if not r.started),
            gave_up=sum(1 for r in results if r.gave_up),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    def close(self) -> None:
        """Release what the cold start made (for tests: a Lambda environment simply ends)."""
        self.loop.run_until_complete(self.app.close())
        self.queues.close()
        self.loop.close()

    def _hold_leases(self, remaining: float) -> None:
        """An idempotency claim must outlast the invocation that takes it: nothing renews it once
        the function returns (and a frozen environment cannot), so a lease shorter than the time
        left is raised to it."""
        store = self.app.idempotency
        if store is None or self._lease is None:
            return
        wanted = max(self._lease, math.ceil(remaining) + 1)
        if wanted != store.lease_seconds:
            store.lease_seconds = wanted
            _log.debug("idempotency leases set to the function's time", lease_seconds=wanted)
