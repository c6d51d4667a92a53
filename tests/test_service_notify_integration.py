"""`watcher run` under a real systemd notify-socket peer (tests/support/notify_peer.py: an AF_UNIX
datagram socket read as systemd reads it, the sender's pid from the kernel), on a real LocalStack:
READY=1 only once the queue answered, WATCHDOG=1 at half of WATCHDOG_USEC from the event loop and
none while a handler blocks that loop, STATUS= with the in-flight and processed counts, STOPPING=1 on
the first SIGTERM. The outage before READY is a real one: a TCP proxy in front of LocalStack that
refuses connections until the test lets them through.
"""

from __future__ import annotations

import itertools
import json
import signal
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures import s3_event
from tests.support.notify_peer import NotifyPeer
from tests.support.process import WatcherProcess, base_config, calls, wait_until
from tests.support.proxy import CuttableProxy
from watcher.service_notify import READY, STOPPING, WATCHDOG

pytestmark = pytest.mark.integration

LOOP_HANDLERS = "tests.support.loop_handlers"
SLEEP = "tests.support.handlers:sleep"


def loop_route(name: str, function: str, calls_file: Path, seconds: float) -> dict[str, Any]:
    options = {"calls_file": str(calls_file), "seconds": seconds}
    return {
        "name": name,
        "prefix": f"{name}/",
        "handler": {"type": "python", "function": f"{LOOP_HANDLERS}:{function}", "options": options},
    }


def slow_route(calls_file: Path) -> dict[str, Any]:
    """A well-behaved long unit: awaits for a minute, so the loop keeps running."""
    options = {"calls_file": str(calls_file), "seconds": 60}
    return {"name": "slow", "prefix": "slow/", "handler": {"type": "python", "function": SLEEP, "options": options}}


def logged_at(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()


def statuses(peer: NotifyPeer) -> list[str]:
    return [d.get("STATUS") or "" for d in peer.with_field("STATUS=")]


def test_ready_is_sent_once_the_queue_answered_and_the_watchdog_is_fed_meanwhile(
    make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    proxy = CuttableProxy(4566)
    proxy.cut()  # SQS unreachable: the worker keeps trying to connect
    config = base_config(queues.url, [{"name": "all", "handler": {"type": "log"}}], aws={"endpoint_url": proxy.url})
    with NotifyPeer() as peer:
        worker = WatcherProcess(config, tmp_path, env=peer.environment(watchdog_seconds=2))
        try:
            worker.wait_for_event("queue not reachable; retrying", timeout=60)
            peer.wait_for(WATCHDOG, timeout=10, count=3)
            assert peer.with_field(READY) == [], "READY before the queue answered"
            assert any(s.startswith("connecting to the queue") for s in statuses(peer)), statuses(peer)

            resumed = time.time()
            proxy.resume()
            ready = peer.wait_for(READY, timeout=60)
            started = worker.wait_for_event("worker started", timeout=5)[0]
            assert ready.wall > resumed
            assert logged_at(started) <= ready.wall, "READY follows the `worker started` line"
            assert ready.pid == worker.process.pid, "sent by the main process (NotifyAccess=main)"
            assert ready.get("STATUS") == "in flight 0, processed 0"
            pings = peer.times(WATCHDOG)
            assert len([t for t in pings if t < ready.monotonic]) >= 3, "pings while connecting"
        finally:
            assert worker.stop() == 0, worker.output()
            proxy.cut()


def test_watchdog_pings_come_at_half_watchdog_usec_and_stop_while_a_handler_blocks_the_loop(
    make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(queues.url, [loop_route("block", "block_the_loop", calls_file, seconds=3)])
    with NotifyPeer() as peer:
        worker = WatcherProcess(config, tmp_path, env=peer.environment(watchdog_seconds=1))
        try:
            ready = peer.wait_for(READY, timeout=30)
            time.sleep(2.5)  # a few pings of an idle worker
            queues.send(s3_event("b", "block/a.csv"))
            wait_until(lambda: len(calls(calls_file)) == 2, 30, what="the blocking unit to end")
            blocking, unblocked = (line["time"] for line in calls(calls_file))
            time.sleep(1.5)
        finally:
            assert worker.stop() == 0, worker.output()
        walls = [d.wall for d in peer.with_field(WATCHDOG)]

    idle = [b - a for a, b in itertools.pairwise(walls) if ready.wall < a and b < blocking]
    print(f"idle gaps between pings: median {statistics.median(idle):.3f}s, max {max(idle):.3f}s")
    assert len(idle) >= 4
    assert 0.4 <= statistics.median(idle) <= 0.6, "half of WATCHDOG_USEC (1 s)"
    assert max(idle) < 1.0, "never late enough for systemd to act"
    during = [t for t in walls if blocking + 0.05 < t < unblocked - 0.05]
    assert during == [], "no ping while the loop is blocked"
    gap = min(t for t in walls if t >= unblocked - 0.05) - max(t for t in walls if t <= blocking + 0.05)
    print(f"longest gap, across the blocked loop: {gap:.3f}s (handler blocked {unblocked - blocking:.3f}s)")
    assert gap >= unblocked - blocking - 0.1
    assert any(t > unblocked for t in walls), "pings resume with the loop"
    assert json.loads(calls_file.read_text().splitlines()[0])["notify_socket"] is False, (
        "NOTIFY_SOCKET is not left for handlers and their children"
    )


def test_status_counts_messages_and_stopping_comes_on_the_first_sigterm(make_queues: Any, tmp_path: Path) -> None:
    queues = make_queues()
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(
        queues.url,
        [{"name": "quick", "prefix": "quick/", "handler": {"type": "log"}}, slow_route(calls_file)],
        worker={"shutdown_grace_seconds": 2},
    )
    with NotifyPeer() as peer:
        worker = WatcherProcess(config, tmp_path, env=peer.environment(watchdog_seconds=10))
        try:
            peer.wait_for(READY, timeout=30)
            for index in range(3):
                queues.send(s3_event("b", f"quick/{index}.csv"))
            queues.send(s3_event("b", "slow/job.bin"))
            wait_until(lambda: calls(calls_file), 30, what="the slow unit to start")
            wait_until(lambda: "in flight 1, processed 3" in statuses(peer), 15, what=f"the counts: {statuses(peer)}")
            signalled = time.time()
            worker.signal(signal.SIGTERM)
            stopping = peer.wait_for(STOPPING, timeout=10)
            assert worker.process.wait(30) == 0
            exited = time.time()
        finally:
            worker.stop()
    assert signalled < stopping.wall < logged_at(worker.events("worker stopped")[0]) < exited
    assert stopping.get("STATUS") == "stopping: in flight 1, processed 3"
    assert stopping.pid == worker.process.pid
    assert len(peer.with_field(READY)) == 1
    assert worker.events("message handed back unfinished at shutdown"), "the slow unit outlived the grace period"


def test_a_queue_that_cannot_be_used_says_why_and_never_becomes_ready(make_queues: Any, tmp_path: Path) -> None:
    queues = make_queues()
    config = base_config(queues.url + "-missing", [{"name": "all", "handler": {"type": "log"}}])
    with NotifyPeer() as peer:
        worker = WatcherProcess(config, tmp_path, env=peer.environment(watchdog_seconds=10))
        assert worker.process.wait(60) == 2, worker.output()
        worker.stop()
        wait_until(lambda: statuses(peer)[-1].startswith("cannot start: "), 5, what=f"why: {statuses(peer)}")
        last = statuses(peer)[-1]
    assert last.startswith("cannot start: queue "), last
    assert peer.with_field(READY) == []
