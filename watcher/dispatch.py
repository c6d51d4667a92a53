"""One message body -> records -> units -> handlers -> one outcome for the message.

This is the part of the pipeline the long-running worker and the Lambda entry point share: it knows
nothing of receipt handles, visibility or deletion. The caller turns the ``MessageOutcome`` into
delete / retry with backoff / dead-letter (watcher.outcome).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Histogram

from watcher.blocking import shielded
from watcher.config.schema import Config, RouteConfig
from watcher.envelope import SKIP_NOT_SELECTED, Skip, parse_body
from watcher.errors import MessageFormatError, PermanentError, RetryableError
from watcher.handlers.base import Handler
from watcher.idempotency.gate import IdempotencyGate
from watcher.logs import bind_log_fields, get_logger, log_enabled
from watcher.metrics import Metrics
from watcher.outcome import MessageOutcome, Status, UnitResult, bounded, combine
from watcher.records import S3Record
from watcher.routing import Unit, match_routes

_log = get_logger("watcher.dispatch")
# Message attributes that `watcher dlq replay` and `watcher backfill` set for a deliberate re-run.
ATTR_IGNORE_IDEMPOTENCY = "watcher.ignore_idempotency"
ATTR_ROUTES = "watcher.routes"  # comma-separated route names: only these run


@dataclass(frozen=True, slots=True)
class Directives:
    """What a message asks of dispatch beyond its body: run units already completed again
    (``--ignore-idempotency``), or only some routes (``--route``)."""

    ignore_idempotency: bool = False
    only_routes: frozenset[str] | None = None

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Mapping[str, Any]] | None) -> Directives:
        """From SQS message attributes, as ReceiveMessage gives them (``StringValue``) or as a Lambda
        event record does (``stringValue``)."""
        if not attributes:
            return _NO_DIRECTIVES

        def text(name: str) -> str | None:
            value = attributes.get(name)
            return None if value is None else (value.get("StringValue") or value.get("stringValue"))

        ignore, routes = text(ATTR_IGNORE_IDEMPOTENCY), text(ATTR_ROUTES)
        if ignore is None and routes is None:
            return _NO_DIRECTIVES
        only = frozenset(name.strip() for name in routes.split(",") if name.strip()) if routes else None
        return cls(ignore_idempotency=(ignore or "").lower() == "true", only_routes=only)


_NO_DIRECTIVES = Directives()


@dataclass(frozen=True, slots=True)
class MessagePlan:
    """A message body parsed and routed: each record with the routes that want it, and what is
    skipped. ``watcher explain`` prints it; the dispatcher runs its units."""

    records: list[tuple[S3Record, list[RouteConfig]]] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    def units(self, message_id: str = "", receive_count: int = 1) -> list[Unit]:
        return [Unit(record, route, message_id, receive_count) for record, routes in self.records for route in routes]

    def only(self, names: frozenset[str]) -> MessagePlan:
        """The same plan restricted to the routes named; the others become skips."""
        kept: list[tuple[S3Record, list[RouteConfig]]] = []
        skipped = list(self.skipped)
        for record, routes in self.records:
            kept.append((record, [r for r in routes if r.name in names]))
            skipped.extend(Skip(SKIP_NOT_SELECTED, f"{r.name} {record.uri}") for r in routes if r.name not in names)
        return MessagePlan(kept, skipped)


def plan_message(body: str | bytes, routes: Sequence[RouteConfig], *, raw_keys: bool = False) -> MessagePlan:
    """Parse a message body and match its records to routes. Raises ``MessageFormatError``."""
    parsed = parse_body(body, raw_keys=raw_keys)
    plan = MessagePlan(skipped=list(parsed.skipped))
    for record in parsed.records:
        matched, skip = match_routes(record, routes)
        if skip is not None:
            plan.skipped.append(skip)
        plan.records.append((record, matched))
    return plan


class Dispatcher:
    def __init__(
        self,
        config: Config,
        handlers: Mapping[str, Handler],
        metrics: Metrics,
        idempotency: IdempotencyGate | None = None,
    ) -> None:
        self._config = config
        self._handlers = handlers
        self._metrics = metrics
        self._idempotency = idempotency
        self._unit_metrics: dict[tuple[str, str, Status], tuple[Histogram, Counter]] = {}

    async def process(
        self, body: str, message_id: str = "", receive_count: int = 1, directives: Directives = _NO_DIRECTIVES
    ) -> MessageOutcome:
        """Run every unit of one message and say what should happen to it.

        Call it in a task of its own per message, with the message's own fields (``message_id``,
        ``receive_count``) bound in the log context, as the worker and the Lambda entry point do.
        A message with one unit runs it in the caller's task and leaves the unit's summary (route,
        bucket, key, handler, outcome, duration_ms, dataset_uri, error, and what the handler bound)
        in the caller's log context: the caller's one line about the message is also the unit's
        summary line. Several units run in tasks of their own, each logging ``unit finished``.
        """
        try:
            plan = plan_message(body, self._config.routes, raw_keys=self._config.raw_keys)
        except MessageFormatError as exc:
            self._metrics.errors.labels("parse").inc()
            return MessageOutcome("permanent", bounded(f"unparseable message: {exc}"), route="")
        if directives.only_routes is not None:
            plan = plan.only(directives.only_routes)
        force = directives.ignore_idempotency
        for skip in plan.skipped:
            self._metrics.skipped.labels(skip.reason).inc()
        units = plan.units(message_id, receive_count)
        if not units:
            return MessageOutcome("ok", skipped=plan.skipped)
        if len(units) == 1:  # the common case: no task per unit, one log line per message
            return combine([await self._run_unit(units[0], own_line=False, force=force)], plan.skipped)
        results = await asyncio.gather(*(self._run_unit(unit, own_line=True, force=force) for unit in units))
        return combine(results, plan.skipped)

    async def _run_unit(self, unit: Unit, *, own_line: bool, force: bool) -> UnitResult:
        """Run one unit with its fields bound in the log context (the task's: not undone, see
        ``process``); log its summary line, or leave the summary bound for the caller's line.
        With an idempotency store, the unit runs only if its claim is taken."""
        route = unit.route
        started = time.perf_counter()
        bind_log_fields(bucket=unit.record.bucket, key=unit.record.key, route=route.name, handler=route.handler.type)
        owner: str | None = None
        if self._idempotency is not None:
            gate = await self._idempotency.enter(unit, force=force)
            if isinstance(gate, UnitResult):  # not run: a duplicate, or held by another worker
                if gate.status != "ok":
                    self._metrics_for(route.name, route.handler.type, gate.status)[1].inc()
                return self._summarise(unit, gate, started, own_line)
            owner = gate
        try:
            result = await self._handle(unit)
        except BaseException:  # cancelled (shutdown past its grace): give the claim back first
            if owner is not None and self._idempotency is not None:
                await shielded(self._idempotency.leave(unit, owner, succeeded=False))
            raise
        if owner is not None and self._idempotency is not None:
            await self._idempotency.leave(unit, owner, succeeded=result.status == "ok")
        duration_metric, records_metric = self._metrics_for(route.name, route.handler.type, result.status)
        duration_metric.observe(time.perf_counter() - started)
        records_metric.inc()
        if result.status != "ok":
            self._metrics.errors.labels("handler").inc()
        return self._summarise(unit, result, started, own_line)

    async def _handle(self, unit: Unit) -> UnitResult:
        """The handler's run, its failure classified."""
        route = unit.route
        timeout = route.timeout_seconds or self._config.worker.default_timeout_seconds
        deadline = asyncio.timeout(timeout) if timeout is not None else None
        try:
            if deadline is None:
                await self._handlers[route.name].handle(unit)
            else:
                async with deadline:
                    await self._handlers[route.name].handle(unit)
            return UnitResult(route.name, "ok")
        except PermanentError as exc:
            return UnitResult(route.name, "permanent", _describe(exc))
        except RetryableError as exc:
            return UnitResult(route.name, "retry", _describe(exc))
        except TimeoutError as exc:
            # Our deadline, or a timeout inside the handler (a socket, say): both are retryable.
            expired = deadline is not None and deadline.expired()
            return UnitResult(route.name, "retry", f"timed out after {timeout:g}s" if expired else _describe(exc))
        except Exception as exc:  # unknown failures must not lose the file: retry
            _log.exception("handler raised an unexpected error")
            return UnitResult(route.name, "retry", _describe(exc))

    def _summarise(self, unit: Unit, result: UnitResult, started: float, own_line: bool) -> UnitResult:
        """The unit's summary: its own ``unit finished`` line, or fields left for the caller's line."""
        summary: dict[str, Any] = {
            "outcome": result.status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "dataset_uri": unit.dataset_uri,
        }
        if result.error is not None:
            summary["error"] = result.error
        if result.skipped is not None:
            summary.update(skipped=result.skipped, skipped_detail=result.detail)
        if not own_line:
            bind_log_fields(**summary)
        elif log_enabled(level := logging.INFO if result.status == "ok" else logging.WARNING):
            _log.log(level, "unit finished", **summary)
        return result

    def _metrics_for(self, route: str, handler_type: str, status: Status) -> tuple[Histogram, Counter]:
        """The labelled children of one unit's metrics, looked up once (``labels()`` is not free)."""
        key = (route, handler_type, status)
        children = self._unit_metrics.get(key)
        if children is None:
            children = (
                self._metrics.handler_duration.labels(route, handler_type),
                self._metrics.records.labels(route, status),
            )
            self._unit_metrics[key] = children
        return children


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, RetryableError | PermanentError) else f"{type(exc).__name__}: {text}"
