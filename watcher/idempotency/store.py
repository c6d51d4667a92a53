"""The idempotency store as dispatch uses it: claim a unit before it runs, complete or release it
after, and keep the leases of running units alive.

A lease lasts ``lease_seconds`` (by default the queue's visibility timeout) and is renewed every half
of it for as long as the unit runs, by this process, independently of the message's receipt: a unit
still running must keep its claim even if SQS has handed its message to another worker meanwhile
(that worker then waits instead of running the job a second time). A worker killed mid-unit stops
renewing, so its claim can be taken over after at most ``lease_seconds``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from watcher.config.schema import Config
from watcher.idempotency.backend import ClaimRequest, ClaimResult, IdempotencyBackend
from watcher.logs import get_logger
from watcher.metrics import Metrics

P = ParamSpec("P")
R = TypeVar("R")
_log = get_logger("watcher.idempotency")
_FORGET_EVERY_SECONDS = 3600.0


class IdempotencyStore:
    def __init__(
        self,
        backend: IdempotencyBackend,
        *,
        lease_seconds: float,
        completed_ttl_seconds: float,
        metrics: Metrics,
        threads: int = 1,
    ) -> None:
        self._backend = backend
        self.lease_seconds = lease_seconds
        self._ttl = completed_ttl_seconds
        self._metrics = metrics
        # SQLite: one connection, one thread. DynamoDB: boto3's client is thread-safe.
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="watcher-idempotency")
        self._held: dict[tuple[str, str], str] = {}  # (route, request_id) -> our owner token

    @classmethod
    def from_config(cls, config: Config, metrics: Metrics) -> IdempotencyStore | None:
        settings = config.idempotency
        if settings is None:
            return None
        backend: IdempotencyBackend
        if settings.backend == "dynamodb":
            from watcher.idempotency.dynamodb import DynamoDbBackend, table_aws  # boto3: only for this backend

            backend, threads = DynamoDbBackend(settings.table, table_aws(config)), 16
        else:
            from watcher.idempotency.sqlite import SqliteBackend

            backend, threads = SqliteBackend(settings.path), 1
        lease = settings.lease_seconds or config.queue.visibility_timeout
        return cls(
            backend,
            lease_seconds=lease,
            completed_ttl_seconds=settings.completed_ttl_seconds,
            metrics=metrics,
            threads=threads,
        )

    async def _call(self, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def claim(self, route: str, request_id: str, subject: str = "", *, force: bool = False) -> ClaimResult:
        now = time.time()
        request = ClaimRequest(
            route, request_id, secrets.token_hex(8), now, now + self.lease_seconds, now + self._ttl, subject, force
        )
        result = await self._call(self._backend.claim, request)
        if result.state == "acquired":
            self._held[(route, request_id)] = request.owner
        return result

    async def complete(self, route: str, request_id: str, owner: str) -> bool:
        self._held.pop((route, request_id), None)
        now = time.time()
        done = await self._call(self._backend.complete, route, request_id, owner, now, now + self._ttl)
        if not done:
            _log.warning(
                "completed a unit whose claim another worker had taken over", route=route, request_id=request_id
            )
        return done

    async def release(self, route: str, request_id: str, owner: str) -> bool:
        self._held.pop((route, request_id), None)
        return await self._call(self._backend.release, route, request_id, owner)

    async def keep_leases(self) -> None:
        """Renew the leases of the units running now, every half lease; forget expired records
        hourly (SQLite has no TTL). Runs until cancelled."""
        forgotten = time.monotonic()
        while True:
            await asyncio.sleep(self.lease_seconds / 2)
            await self.renew_held()
            if time.monotonic() - forgotten > _FORGET_EVERY_SECONDS:
                forgotten = time.monotonic()
                await self._call(self._backend.forget_expired, time.time())

    async def renew_held(self) -> None:
        lease_until = time.time() + self.lease_seconds
        for (route, request_id), owner in list(self._held.items()):
            try:
                renewed = await self._call(self._backend.renew, route, request_id, owner, lease_until)
            except Exception as exc:  # the store is unreachable: try again at the next tick
                self._metrics.errors.labels("idempotency").inc()
                _log.warning("cannot renew a lease", route=route, request_id=request_id, error=str(exc))
                continue
            if not renewed and self._held.get((route, request_id)) == owner:
                del self._held[(route, request_id)]
                _log.warning("lease lost: another worker took the unit over", route=route, request_id=request_id)

    async def close(self) -> None:
        await self._call(self._backend.close)
        self._executor.shutdown(wait=False)
