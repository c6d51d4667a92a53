"""The systemd notify protocol (sd_notify(3)), in a few lines of socket code.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET``: a datagram socket, either a path or, when
it starts with ``@``, a name in the abstract namespace. A notification is one datagram of
newline-separated ``KEY=value`` fields: ``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``.
With ``WatchdogSec=`` systemd also passes ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, the process it
expects the pings from); the service pings at half that period.

No library: libsystemd's sd_notify is C, and the Python wrappers add nothing these few lines do not.
Nothing here raises when there is no socket or it is gone: ``notify`` returns False, without logging,
so the worker runs the same with or without systemd.

``Notifier`` is what ``watcher run`` says, and when: ``STATUS=`` while it connects, ``READY=1`` once
the worker has started (the queue answered, the DLQ is known, the handlers started), ``STATUS=`` every
few seconds when it changed, ``WATCHDOG=1`` from the event loop, ``STOPPING=1`` on the first signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Mapping

READY = "READY=1"
STOPPING = "STOPPING=1"
WATCHDOG = "WATCHDOG=1"
# A notification must not stall the event loop that sends it: systemd reads its socket promptly,
# and a stuck reader is a reason to drop one notification, not to block.
_SEND_TIMEOUT_SECONDS = 1.0
_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
STATUS_SECONDS = 5.0  # how often STATUS= is refreshed (only sent when its text changed)


def status(text: str) -> str:
    """A ``STATUS=`` field (one line: newlines would start new fields)."""
    return "STATUS=" + " ".join(text.splitlines())


def socket_address(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The notify socket's address from ``NOTIFY_SOCKET``, as ``sendto`` takes it; None when unset or
    of a kind this module does not speak (``vsock:``)."""
    value = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if value.startswith("@") and len(value) > 1:
        return b"\0" + os.fsencode(value[1:])
    if value.startswith("/"):
        return os.fsencode(value)
    return None


def notify(*fields: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``fields`` as one datagram; True when it was sent. False when there is no notify socket,
    when sending fails (socket gone, peer not reading) or when there is nothing to send."""
    address = socket_address(environ)
    if address is None or not fields:
        return False
    message = "\n".join(" ".join(field.splitlines()) for field in fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(_SEND_TIMEOUT_SECONDS)
            sock.sendto(message, address)
    except OSError:
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between two ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None when systemd
    expects none from this process: no watchdog, a malformed value, or ``WATCHDOG_PID`` naming
    another process."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 2 / 1_000_000


async def keep_watchdog_fed(interval: float, environ: Mapping[str, str] | None = None) -> None:
    """Ping every ``interval`` seconds until cancelled. Run it as a task on the worker's event loop:
    a loop blocked by a handler stops the pings, and systemd restarts the service."""
    while True:
        notify(WATCHDOG, environ=environ)
        await asyncio.sleep(interval)


class Notifier:
    """The notifications of one service process. Without ``NOTIFY_SOCKET`` it does nothing and starts
    no task, so a worker outside systemd pays nothing for it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = {name: environ[name] for name in _VARIABLES if name in environ}
        self.enabled = socket_address(self._environ) is not None
        self.watchdog_seconds = watchdog_interval(self._environ) if self.enabled else None
        self._status: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_environment(cls) -> Notifier:
        """Read the variables systemd set, and remove them from the environment (as sd_notify's
        ``unset_environment`` does) so that no child process inherits them."""
        notifier = cls(os.environ)
        for name in _VARIABLES:
            os.environ.pop(name, None)
        return notifier

    def send(self, *fields: str) -> bool:
        return self.enabled and notify(*fields, environ=self._environ)

    def status(self, text: str) -> None:
        """``STATUS=text``, unless that is what systemd shows already."""
        if self.enabled and text != self._status and self.send(status(text)):
            self._status = text

    def stopping(self, text: str) -> None:
        if self.send(STOPPING, status(text)):
            self._status = text

    def start(self, started: asyncio.Event, describe: Callable[[], str], every: float = STATUS_SECONDS) -> None:
        """On the running loop: the watchdog pings, and READY=1 once ``started`` is set, followed by
        ``describe()`` as STATUS= every ``every`` seconds."""
        if not self.enabled:
            return
        if self.watchdog_seconds is not None:
            self._tasks.append(asyncio.create_task(keep_watchdog_fed(self.watchdog_seconds, self._environ)))
        self._tasks.append(asyncio.create_task(self._report(started, describe, every)))

    async def _report(self, started: asyncio.Event, describe: Callable[[], str], every: float) -> None:
        while not started.is_set():  # connecting: say so, and why it takes long when it does
            self.status(describe())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(started.wait(), every)
        text = describe()
        if self.send(READY, status(text)):
            self._status = text
        while True:
            await asyncio.sleep(every)
            self.status(describe())

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
