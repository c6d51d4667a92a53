"""A real systemd notify-socket peer: what systemd does with ``NOTIFY_SOCKET``, for tests.

It binds an AF_UNIX datagram socket (a path in a folder of the test's, or an abstract name), asks
the kernel for each sender's credentials (SO_PASSCRED, as systemd does to enforce
``NotifyAccess=main``), and records every datagram with its fields, its sender's pid and when it
arrived. Give ``peer.environment(watchdog_seconds=...)`` to the process under test.

    with NotifyPeer() as peer:
        worker = WatcherProcess(config, tmp_path, env=peer.environment(watchdog_seconds=2))
        ready = peer.wait_for("READY=1", timeout=30)
        ...
        assert max(peer.gaps("WATCHDOG=1")) < 1.5
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import socket
import struct
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_MAX_DATAGRAM = 65536


@dataclass(frozen=True)
class Datagram:
    fields: tuple[str, ...]  # "KEY=value" in the order sent
    pid: int | None  # the sender, from SCM_CREDENTIALS
    monotonic: float  # time.monotonic() on arrival
    wall: float  # time.time() on arrival, to compare with log timestamps

    def get(self, key: str) -> str | None:
        """The value of the last ``key=`` field, or None."""
        values = [field.partition("=")[2] for field in self.fields if field.partition("=")[0] == key]
        return values[-1] if values else None


class NotifyPeer:
    def __init__(self, folder: Path | None = None, *, abstract: bool = False) -> None:
        """Bind ``<folder>/notify-<random>.sock`` (``folder`` defaults to a fresh private folder under
        the temporary directory, removed on close: pytest's ``tmp_path`` may be too long for
        sun_path's 107 bytes), or an abstract name when ``abstract`` is set."""
        name = f"notify-{uuid.uuid4().hex[:12]}"
        self._own_folder: Path | None = None
        if abstract:
            self.address = f"@watcher-test-{name}"
            bind_to: str | bytes = b"\0" + self.address[1:].encode()
        else:
            if folder is None:
                folder = self._own_folder = Path(tempfile.mkdtemp(prefix="notify-"))
            self.address = str(folder / f"{name}.sock")
            if len(self.address.encode()) > 107:
                raise ValueError(f"socket path longer than sun_path allows: {self.address}")
            bind_to = self.address
        self._bound_to = bind_to
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.bind(bind_to)
        self._sock.settimeout(0.2)
        self._received: list[Datagram] = []
        self._condition = threading.Condition()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="notify-peer", daemon=True)
        self._thread.start()

    def environment(self, watchdog_seconds: float | None = None, watchdog_pid: int | None = None) -> dict[str, str]:
        """``NOTIFY_SOCKET`` (and ``WATCHDOG_USEC``, ``WATCHDOG_PID``) as systemd would set them."""
        env = {"NOTIFY_SOCKET": self.address}
        if watchdog_seconds is not None:
            env["WATCHDOG_USEC"] = str(round(watchdog_seconds * 1_000_000))
        if watchdog_pid is not None:
            env["WATCHDOG_PID"] = str(watchdog_pid)
        return env

    def _receive(self) -> None:
        space = socket.CMSG_SPACE(_UCRED.size)
        while not self._closed.is_set():
            try:
                data, ancillary, _flags, _address = self._sock.recvmsg(_MAX_DATAGRAM, space)
            except TimeoutError:
                continue
            except OSError:
                return
            if self._closed.is_set():
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= _UCRED.size:
                    pid = _UCRED.unpack(payload[: _UCRED.size])[0]
            fields = tuple(line for line in data.decode(errors="replace").split("\n") if line)
            datagram = Datagram(fields, pid, time.monotonic(), time.time())
            with self._condition:
                self._received.append(datagram)
                self._condition.notify_all()

    def datagrams(self) -> list[Datagram]:
        with self._condition:
            return list(self._received)

    def with_field(self, field: str) -> list[Datagram]:
        """Datagrams carrying exactly ``field`` (e.g. ``"READY=1"``), or any ``field`` value when it
        ends with ``=`` (e.g. ``"STATUS="``)."""
        if field.endswith("="):
            return [d for d in self.datagrams() if any(f.startswith(field) for f in d.fields)]
        return [d for d in self.datagrams() if field in d.fields]

    def wait_for(self, field: str, timeout: float, count: int = 1) -> Datagram:
        """The ``count``-th datagram carrying ``field``, waiting for it up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                found = self.with_field(field)
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [d.fields for d in self._received]
                    raise AssertionError(f"no {count}x {field!r} within {timeout}s; received: {seen}")
                self._condition.wait(left)

    def times(self, field: str) -> list[float]:
        """Arrival times (monotonic) of the datagrams carrying ``field``."""
        return [d.monotonic for d in self.with_field(field)]

    def gaps(self, field: str, since: float | None = None, until: float | None = None) -> list[float]:
        """Seconds between consecutive ``field`` datagrams that arrived within [since, until]."""
        times = [t for t in self.times(field) if (since is None or t >= since) and (until is None or t <= until)]
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as waker:
            waker.sendto(b"", self._bound_to)  # wakes the receiver now rather than at its next timeout
        self._thread.join(2)
        self._sock.close()
        if not self.address.startswith("@"):
            Path(self.address).unlink(missing_ok=True)
        if self._own_folder is not None:
            shutil.rmtree(self._own_folder, ignore_errors=True)

    def __enter__(self) -> NotifyPeer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
