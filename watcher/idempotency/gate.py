"""The idempotency store in front of one unit: ``enter`` before the handler runs (the claim), ``leave``
after it (completed, or released so that a retry can run it).

``enter`` answers with our owner token when the unit may run, or with the unit's result when it
must not: ``ok`` and skipped as a duplicate when it already completed (``watcher_records_skipped_total
{reason="duplicate"}``), ``retry`` when another worker holds it now (the message comes back after a
backoff, by which time that worker has completed it, or died and lost its lease). A store that cannot
be reached makes the unit retryable: running it blind could run it twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

from watcher.idempotency.store import IdempotencyStore
from watcher.logs import get_logger
from watcher.metrics import Metrics
from watcher.outcome import UnitResult
from watcher.routing import Unit

_log = get_logger("watcher.idempotency")
DUPLICATE = "duplicate"


class IdempotencyGate:
    def __init__(self, store: IdempotencyStore, metrics: Metrics) -> None:
        self.store = store
        self._metrics = metrics

    async def enter(self, unit: Unit, *, force: bool = False) -> str | UnitResult:
        route = unit.route.name
        try:
            claim = await self.store.claim(route, unit.request_id, unit.record.uri, force=force)
        except Exception as exc:
            self._metrics.errors.labels("idempotency").inc()
            return UnitResult(route, "retry", f"idempotency store unreachable: {type(exc).__name__}: {exc}")
        if claim.state == "acquired":
            return claim.owner
        if claim.state == "completed":
            self._metrics.skipped.labels(DUPLICATE).inc()
            return UnitResult(route, "ok", skipped=DUPLICATE, detail=f"completed at {_when(claim.completed_at)}")
        return UnitResult(route, "retry", f"in progress elsewhere (lease until {_when(claim.lease_until)})")

    async def leave(self, unit: Unit, owner: str, *, succeeded: bool) -> None:
        route, request_id = unit.route.name, unit.request_id
        try:
            if succeeded:
                await self.store.complete(route, request_id, owner)
            else:
                await self.store.release(route, request_id, owner)
        except Exception as exc:  # the lease runs out on its own; a retry then claims again
            self._metrics.errors.labels("idempotency").inc()
            _log.warning("cannot record the unit in the idempotency store", succeeded=succeeded, error=str(exc))


def _when(epoch: float | None) -> str:
    return "?" if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
