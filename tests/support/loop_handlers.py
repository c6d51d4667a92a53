"""Handler functions that misbehave towards the event loop, for the systemd watchdog tests
(``handler: {type: python, function: tests.support.loop_handlers:NAME, options: {...}}``).

Each call appends JSON lines to ``options["calls_file"]`` with wall-clock times, so a test can line
them up with the notifications the worker sent.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from watcher.routing import Unit


def _write(options: Mapping[str, Any], **fields: Any) -> None:
    with open(options["calls_file"], "a", encoding="utf-8") as calls:
        calls.write(json.dumps({"time": time.time(), **fields}) + "\n")


async def block_the_loop(unit: Unit, options: Mapping[str, Any]) -> None:
    """A coroutine that calls a blocking function: the bug the watchdog exists for. Nothing else runs
    on the worker's event loop for ``options["seconds"]``."""
    _write(options, event="blocking", key=unit.record.key, notify_socket="NOTIFY_SOCKET" in os.environ)
    time.sleep(float(options["seconds"]))  # noqa: ASYNC251 - on purpose
    _write(options, event="unblocked", key=unit.record.key)
