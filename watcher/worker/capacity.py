"""Capacity acquired before receiving (as taskiq's receiver does): a poller first waits for at least
one free slot, takes up to ``n`` of them, and only then asks SQS for that many messages. The worker
therefore never holds a message it has no slot for, and never lets one time out in a local buffer.

A slot stands for one message being processed: taken before the receive, given back when the
message's processing is over (see ``Worker._handle_message``: for a successful message that is as
soon as its delete is queued, before the delete round trip; the deletes still pending are bounded by
``BatchDeleter``)."""

from __future__ import annotations

import asyncio


class Capacity:
    def __init__(self, total: int) -> None:
        self.total = total
        self._free = total
        # Waiting pollers: each future is resolved once at least ``wanted`` slots are free.
        self._waiters: dict[asyncio.Future[None], int] = {}

    async def acquire_up_to(self, n: int, linger: float = 0.0) -> int:
        """Wait until a slot is free, then take ``min(n, free)`` slots and return how many.

        With ``linger``, wait up to that long for ``n`` slots (at most the total) once at least one
        is free: slots of a batch free one by one, and taking each at once would turn every receive
        into a receive of one message. A poller that another one beat to the slots it waited for
        goes on waiting until its own deadline, instead of taking the one slot freed next (with two
        pollers and a workflow route, receives averaged 8.3 messages instead of 10).
        """
        n = min(n, self.total)  # never linger for slots that cannot exist
        while self._free < 1:
            await self._wait_for(1, None)
        if self._free < n and linger > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + linger
            while self._free < n and (left := deadline - loop.time()) > 0:
                await self._wait_for(n, left)
            while self._free < 1:  # another poller took them meanwhile, and the linger is over
                await self._wait_for(1, None)
        taken = min(n, self._free)
        self._free -= taken
        return taken

    def release(self, n: int = 1) -> None:
        """Give back ``n`` slots (synchronous: it cannot be interrupted half-way by a cancellation)."""
        if n <= 0:
            return
        self._free = min(self.total, self._free + n)
        for waiter, wanted in self._waiters.items():
            if wanted <= self._free and not waiter.done():
                waiter.set_result(None)

    async def _wait_for(self, wanted: int, at_most: float | None) -> None:
        """Return once ``wanted`` slots are free, or after ``at_most`` seconds, whichever is first."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters[waiter] = wanted
        timer = None if at_most is None else loop.call_later(at_most, _wake, waiter)
        try:
            await waiter
        finally:
            del self._waiters[waiter]
            if timer is not None:
                timer.cancel()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
