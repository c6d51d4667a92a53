"""Blocking SDK calls (docker, boto3 transfers) off the event loop, with the caller's context.

They get a pool of their own rather than the loop's default executor: a container job holds a
thread for as long as its ``wait`` lasts, and a few long jobs must not starve DNS lookups or other
``asyncio.to_thread`` users of the default pool (min(32, cpus + 4) threads).
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

_executor: ThreadPoolExecutor | None = None
MAX_THREADS = 64


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="watcher-blocking")
    return _executor


async def run_blocking(function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``await`` a blocking call in the pool; structlog context (message, route) goes with it."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool(), call)


async def shielded(awaitable: Awaitable[R]) -> R:
    """Finish a clean-up step even when the caller is being cancelled (shutdown, a route's
    timeout): the step runs to its end; the cancellation still reaches the caller afterwards."""
    return await asyncio.shield(asyncio.ensure_future(awaitable))


def shutdown(timeout: float = 2.0) -> None:
    """Stop the pool at exit: idle threads end at once, busy ones get ``timeout`` seconds (the caller
    then reports any still running rather than wait for them)."""
    global _executor
    if _executor is None:
        return
    _executor.shutdown(wait=False, cancel_futures=True)
    _executor = None
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith("watcher-blocking"):
            thread.join(max(0.0, deadline - time.monotonic()))
