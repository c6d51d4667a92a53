"""`worker.event_loop`: uvloop when installed (``auto``, the default), asyncio's own loop on request.
The worker must behave the same on both: the whole integration suite runs on the default, and one
worker here runs on each, signal handling and shutdown included."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queues
from tests.support.fixtures import s3_event
from tests.support.process import WatcherProcess, base_config
from watcher.app import parse_config
from watcher.commands.run import new_event_loop
from watcher.errors import ConfigError

uvloop = pytest.importorskip("uvloop")  # a dependency everywhere but Windows

ROUTE = {"name": "csv", "bucket": "lake", "prefix": "raw/", "handler": {"type": "log"}}


def worker_section(**worker: Any) -> Any:
    return parse_config({"queue": {"name": "q"}, "worker": worker, "routes": [ROUTE]}, "test.yaml", {}).worker


def test_the_default_is_auto_and_the_choices_are_checked() -> None:
    assert worker_section().event_loop == "auto"
    assert worker_section(event_loop="asyncio").event_loop == "asyncio"
    with pytest.raises(ConfigError) as caught:
        worker_section(event_loop="trio")
    assert any("worker.event_loop" in problem and "asyncio" in problem for problem in caught.value.problems)


@pytest.mark.parametrize(("choice", "kind"), [("auto", uvloop.Loop), ("uvloop", uvloop.Loop)])
def test_auto_and_uvloop_give_uvloop_when_installed(choice: str, kind: type) -> None:
    loop = new_event_loop(choice)
    try:
        assert isinstance(loop, kind)
    finally:
        loop.close()


def test_asyncio_gives_asyncios_own_loop() -> None:
    loop = new_event_loop("asyncio")
    try:
        assert type(loop).__module__.startswith("asyncio.") and not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_uvloop_asked_for_but_missing_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake: uvloop is installed here; None in sys.modules makes its import fail as if it were not.
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        new_event_loop("uvloop")
    loop = new_event_loop("auto")  # auto falls back to asyncio's loop
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop) and not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


@pytest.mark.integration
@pytest.mark.parametrize(("choice", "expected"), [("auto", "uvloop"), ("asyncio", "asyncio")])
def test_the_worker_runs_and_stops_cleanly_on_either_loop(
    choice: str, expected: str, make_queues: Any, tmp_path: Path
) -> None:
    queues: Queues = make_queues()
    config = base_config(queues.url, [ROUTE], worker={"event_loop": choice, "shutdown_grace_seconds": 5})
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        [started] = worker.events("worker started")
        assert started["event_loop"] == expected
        queues.send(s3_event("lake", "raw/a.csv"))
        [line] = worker.wait_for_units(1)
        assert line["outcome"] == "ok" and line["route"] == "csv"
    finally:
        assert worker.stop() == 0
    assert worker.events("worker stopped")
