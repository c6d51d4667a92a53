"""watcher.service_notify speaks systemd's notify protocol to a real AF_UNIX datagram socket (the
peer in tests/support/notify_peer.py, which reads it as systemd does), and never fails its caller."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.notify_peer import NotifyPeer
from tests.support.process import REPO
from watcher import service_notify
from watcher.service_notify import (
    READY,
    STOPPING,
    WATCHDOG,
    Notifier,
    keep_watchdog_fed,
    notify,
    status,
    watchdog_interval,
)


@pytest.fixture(params=["path", "abstract"])
def peer(request: pytest.FixtureRequest) -> Iterator[NotifyPeer]:
    with NotifyPeer(abstract=request.param == "abstract") as peer:
        yield peer


def test_fields_go_as_one_datagram_from_this_process(peer: NotifyPeer) -> None:
    assert notify(READY, status("in flight 0, processed 0"), environ=peer.environment())
    datagram = peer.wait_for(READY, timeout=5)
    assert datagram.fields == ("READY=1", "STATUS=in flight 0, processed 0")
    assert datagram.pid == os.getpid()  # what systemd checks for NotifyAccess=main


def test_the_abstract_namespace_is_spelt_with_an_at_sign() -> None:
    assert service_notify.socket_address({"NOTIFY_SOCKET": "@sd-notify"}) == b"\0sd-notify"
    assert service_notify.socket_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == b"/run/systemd/notify"


def test_each_notification_arrives_in_order(peer: NotifyPeer) -> None:
    env = peer.environment()
    for fields in ([READY], [WATCHDOG], [status("draining")], [STOPPING]):
        assert notify(*fields, environ=env)
    peer.wait_for(STOPPING, timeout=5)
    assert [d.fields for d in peer.datagrams()] == [
        ("READY=1",),
        ("WATCHDOG=1",),
        ("STATUS=draining",),
        ("STOPPING=1",),
    ]


def test_a_newline_cannot_smuggle_in_a_field(peer: NotifyPeer) -> None:
    assert notify(status("line one\nREADY=1"), environ=peer.environment())
    datagram = peer.wait_for("STATUS=", timeout=5)
    assert datagram.fields == ("STATUS=line one READY=1",)
    assert notify("STATUS=a\nSTOPPING=1", environ=peer.environment())
    assert peer.wait_for("STATUS=", timeout=5, count=2).fields == ("STATUS=a STOPPING=1",)


@pytest.mark.parametrize("value", [None, "", "relative/path", "vsock:2:1234", "@"])
def test_without_a_usable_socket_notify_is_a_no_op(value: str | None) -> None:
    env = {} if value is None else {"NOTIFY_SOCKET": value}
    assert notify(READY, environ=env) is False


def test_notify_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch, peer: NotifyPeer) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", peer.address)
    assert notify(READY)
    assert peer.wait_for(READY, timeout=5).pid == os.getpid()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert notify(READY) is False


def test_a_socket_that_is_gone_returns_false(tmp_path: Path) -> None:
    peer = NotifyPeer(tmp_path)
    env = peer.environment()
    peer.close()  # socket closed and its file removed
    assert notify(READY, environ=env) is False

    leftover = tmp_path / "stale.sock"  # a socket file nobody reads from any more
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(leftover))
    assert notify(READY, environ={"NOTIFY_SOCKET": str(leftover)}) is False

    with NotifyPeer(abstract=True) as gone:
        abstract_env = gone.environment()
    assert notify(READY, environ=abstract_env) is False


def test_nothing_to_send_sends_nothing(peer: NotifyPeer) -> None:
    assert notify(environ=peer.environment()) is False
    assert notify(WATCHDOG, environ=peer.environment())
    peer.wait_for(WATCHDOG, timeout=5)
    assert len(peer.datagrams()) == 1


def test_a_peer_that_stopped_reading_costs_a_bounded_wait(tmp_path: Path) -> None:
    """A datagram socket whose queue is full blocks its senders: notify gives up after a second."""
    path = tmp_path / "full.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as silent:
        silent.bind(str(path))
        env = {"NOTIFY_SOCKET": str(path)}
        sent = 0
        started = time.monotonic()
        while notify(status("x" * 1000), environ=env):
            sent += 1
            assert sent < 100_000, "the queue never filled"
        failed_after = time.monotonic() - started
    assert sent > 0
    assert failed_after < 10
    print(f"queue full after {sent} datagrams; the failing notify returned after a bounded wait")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "500000"}, 0.25),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "me"}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process(
    env: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval(env) == expected


def test_watchdog_interval_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 2.0


async def test_the_watchdog_pings_stop_while_the_event_loop_is_blocked() -> None:
    with NotifyPeer() as peer:
        feeder = asyncio.create_task(keep_watchdog_fed(0.05, environ=peer.environment()))
        await asyncio.sleep(0.5)
        blocked_at = time.monotonic()
        time.sleep(0.6)  # noqa: ASYNC251 - a handler that blocks the loop: no ping can be sent meanwhile
        unblocked_at = time.monotonic()
        await asyncio.sleep(0.3)
        feeder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await feeder
        before = peer.gaps(WATCHDOG, until=blocked_at)
        assert len(before) >= 4, "pings at about the interval while the loop runs"
        assert max(before) < 0.5
        during = [t for t in peer.times(WATCHDOG) if blocked_at + 0.1 < t < unblocked_at]
        assert during == []
        assert max(peer.gaps(WATCHDOG)) >= 0.6
        assert peer.times(WATCHDOG)[-1] > unblocked_at, "pings resume once the loop runs again"


def test_the_peer_names_the_process_that_sent(peer: NotifyPeer) -> None:
    """As systemd does for NotifyAccess=main: the sender's pid comes from the kernel, not from the message."""
    code = "from watcher.service_notify import notify, READY; raise SystemExit(0 if notify(READY) else 1)"
    child = subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, **peer.environment(), "PYTHONPATH": str(REPO)}
    )
    assert child.wait(30) == 0
    assert peer.wait_for(READY, timeout=5).pid == child.pid != os.getpid()


# --- Notifier: what `watcher run` says, and when (end to end: tests/test_service_notify_integration.py)


async def test_a_notifier_without_a_socket_sends_nothing_and_starts_no_task() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled and notifier.watchdog_seconds is None
    tasks_before = asyncio.all_tasks()
    notifier.start(asyncio.Event(), lambda: "never")
    assert asyncio.all_tasks() == tasks_before
    notifier.status("nothing")
    notifier.stopping("nothing")
    await notifier.stop()


def test_status_is_sent_only_when_its_text_changes(peer: NotifyPeer) -> None:
    notifier = Notifier(peer.environment())
    for text in ("in flight 0", "in flight 0", "in flight 1", "in flight 1", "in flight 0"):
        notifier.status(text)
    notifier.stopping("stopping")
    peer.wait_for(STOPPING, timeout=5)
    assert [d.fields for d in peer.datagrams()] == [
        ("STATUS=in flight 0",),
        ("STATUS=in flight 1",),
        ("STATUS=in flight 0",),
        ("STOPPING=1", "STATUS=stopping"),
    ]


def test_from_environment_takes_the_variables_away_from_child_processes(
    monkeypatch: pytest.MonkeyPatch, peer: NotifyPeer
) -> None:
    for name, value in peer.environment(watchdog_seconds=4, watchdog_pid=os.getpid()).items():
        monkeypatch.setenv(name, value)
    notifier = Notifier.from_environment()
    assert (notifier.enabled, notifier.watchdog_seconds) == (True, 2.0)
    assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} & os.environ.keys()
    notifier.status("still speaks")
    assert peer.wait_for("STATUS=", timeout=5).fields == ("STATUS=still speaks",)


async def test_ready_waits_for_the_start_then_status_follows_the_description() -> None:
    with NotifyPeer() as peer:
        notifier = Notifier(peer.environment(watchdog_seconds=0.2))
        started, state = asyncio.Event(), {"text": "connecting"}
        notifier.start(started, lambda: state["text"], every=0.05)
        await asyncio.sleep(0.3)
        assert peer.with_field(READY) == []
        assert [d.get("STATUS") for d in peer.with_field("STATUS=")] == ["connecting"]
        assert len(peer.with_field(WATCHDOG)) >= 2, "pings at 0.1 s from the start"
        state["text"] = "in flight 0"
        started.set()
        await asyncio.sleep(0.1)
        state["text"] = "in flight 3"
        await asyncio.sleep(0.2)
        await notifier.stop()
        ready = peer.with_field(READY)
        assert [d.fields for d in ready] == [("READY=1", "STATUS=in flight 0")]
        assert [d.get("STATUS") for d in peer.with_field("STATUS=")] == ["connecting", "in flight 0", "in flight 3"]
        pings = len(peer.with_field(WATCHDOG))
        await asyncio.sleep(0.3)
        assert len(peer.with_field(WATCHDOG)) == pings, "no ping once stopped"
