"""Blocking SDK calls (docker, boto3 transfers) off the event loop, with the caller's context.

Two pools of their own rather than the loop's default executor (min(32, cpus + 4) threads, shared
with DNS lookups and ``asyncio.to_thread``):

- ``run_blocking``: calls that may take long (S3 transfers, streaming a job's log, removing a job
  folder), 64 threads;
- ``run_control``: short Docker control calls (create, start, inspect, kill, remove), 16 threads,
  so that killing a timed-out job or removing a container at shutdown never queues behind transfers;
- ``run_waiting``: waits for a container's exit, one second at a time, 256 threads: a running job
  holds at most one of these, and nothing else queues behind them.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_POOLS: dict[str, tuple[int, ThreadPoolExecutor | None]] = {
    "blocking": (64, None),
    "control": (16, None),
    "waits": (256, None),
}
_lock = threading.Lock()


def _pool(name: str) -> ThreadPoolExecutor:
    with _lock:
        size, executor = _POOLS[name]
        if executor is None:
            executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"watcher-{name}")
            _POOLS[name] = (size, executor)
        return executor


async def _run(pool: str, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    context = contextvars.copy_context()  # structlog context (message, route) goes with the call
    call = functools.partial(context.run, function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool(pool), call)


async def run_blocking(function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``await`` a blocking call that may take long (a transfer, a folder removal)."""
    return await _run("blocking", function, *args, **kwargs)


async def run_control(function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``await`` a short Docker control call (create, start, inspect, kill, remove)."""
    return await _run("control", function, *args, **kwargs)


async def run_waiting(function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``await`` a call that waits for something (a container's exit) for a bounded time."""
    return await _run("waits", function, *args, **kwargs)


async def shielded(awaitable: Awaitable[R]) -> R:
    """Run a clean-up step to its end even when the caller is cancelled meanwhile (shutdown, a
    route's timeout): the caller waits for the step, then the cancellation goes on."""
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()


def shutdown(timeout: float = 2.0) -> None:
    """Stop the pools at exit: idle threads end at once, busy ones get ``timeout`` seconds (the caller
    then reports any still running rather than wait for them)."""
    with _lock:
        executors = [executor for _, executor in _POOLS.values() if executor is not None]
        for name, (size, _) in list(_POOLS.items()):
            _POOLS[name] = (size, None)
    for executor in executors:
        executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith(("watcher-blocking", "watcher-control", "watcher-waits")):
            thread.join(max(0.0, deadline - time.monotonic()))
