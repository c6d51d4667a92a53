"""Where a backfill stopped: the last key before which every matched object was sent (batches finish
out of order, so it is the end of the longest run of finished batches), written atomically at most
once a second, read by ``--resume``, removed when the backfill completes."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any


def default_path(state_dir: Path, source: str, routes: list[str]) -> Path:
    digest = hashlib.sha256(json.dumps([source, sorted(routes)]).encode()).hexdigest()[:16]
    return state_dir / f"backfill-{digest}.json"


class Checkpoint:
    def __init__(self, path: Path, source: str, routes: list[str]) -> None:
        self.path = path
        self._identity = {"source": source, "routes": sorted(routes)}
        self._finished: dict[int, str] = {}  # batch index -> its last key, once sent
        self._next = 0  # the lowest batch index not yet finished
        self.last_key: str | None = None
        self.sent = 0
        self._written = 0.0

    def resume(self) -> str | None:
        """The key to start after, from the file; None when there is none for this source and routes."""
        try:
            saved: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        if {k: saved.get(k) for k in self._identity} != self._identity:
            raise ValueError(f"{self.path} is the checkpoint of another backfill: {saved.get('source')}")
        self.last_key, self.sent = saved.get("last_key"), int(saved.get("sent", 0))
        return self.last_key

    def finished(self, index: int, last_key: str, count: int) -> None:
        self._finished[index] = last_key
        self.sent += count
        while self._next in self._finished:
            self.last_key = self._finished.pop(self._next)
            self._next += 1
        if time.monotonic() - self._written >= 1.0:
            self.write()

    def write(self) -> None:
        if self.last_key is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({**self._identity, "last_key": self.last_key, "sent": self.sent}))
        os.replace(temporary, self.path)
        self._written = time.monotonic()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
