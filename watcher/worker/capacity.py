"""Capacity acquired before receiving (as taskiq's receiver does): a poller first waits for at least
one free slot, takes up to ``n`` of them, and only then asks SQS for that many messages. The worker
therefore never holds a message it has no slot for, and never lets one time out in a local buffer."""

from __future__ import annotations

import asyncio
import contextlib


class Capacity:
    def __init__(self, total: int) -> None:
        self.total = total
        self._free = total
        self._changed = asyncio.Condition()

    async def acquire_up_to(self, n: int, linger: float = 0.0) -> int:
        """Wait until a slot is free, then take ``min(n, free)`` slots and return how many.

        With ``linger``, wait up to that long for ``n`` slots once at least one is free: slots of a
        batch free one by one, and taking each at once would turn every receive into a receive of
        one message.
        """
        async with self._changed:
            await self._changed.wait_for(lambda: self._free > 0)
            if self._free < n and linger > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(lambda: self._free >= n), linger)
            taken = min(n, self._free)
            self._free -= taken
            return taken

    async def release(self, n: int = 1) -> None:
        if n <= 0:
            return
        async with self._changed:
            self._free = min(self.total, self._free + n)
            self._changed.notify_all()
