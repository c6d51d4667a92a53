"""A local stand-in service run as a background process for development, demos and tests: started
in a session of its own with its log and pid file in its state folder, waited for until it answers,
stopped by its pid file. Used by the embedded LocalStack and DynamoDB Local."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any


def home() -> Path:
    """Where watcher caches what it installs for local use (``$WATCHER_HOME``)."""
    return Path(os.environ.get("WATCHER_HOME", Path.home() / ".cache" / "watcher"))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing) for the block: two processes installing
    the same thing under the watcher home at once (two test sessions, two ``local up``) install it once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start(
    name: str,
    command: list[str],
    state: Path,
    ready: Callable[[], bool],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    out: Any = None,
) -> int:
    """Start ``command`` with its output in ``<state>/<name>.log``; return its pid once ``ready()``."""
    state.mkdir(parents=True, exist_ok=True)
    log_path = state / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            env=dict(env) if env is not None else None,
            cwd=state,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (state / f"{name}.pid").write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log_path}")
        if ready():
            return process.pid
        time.sleep(0.25)
    raise RuntimeError(f"{name} not ready after {timeout:.0f}s; see {log_path}")


def stop(name: str, state: Path, *, leader_only: bool = False, wait: float = 10.0) -> int | None:
    """Stop the process whose pid file is in ``state``: SIGTERM to its whole session (or, with
    ``leader_only``, to it alone, so that it can stop its own children), then after ``wait`` seconds
    SIGKILL to the session. Its pid, or None when none was running."""
    pid_file = state / f"{name}.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    try:
        if leader_only:
            os.kill(pid, signal.SIGTERM)
        else:
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when we are its parent (tests)
            os.kill(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)
    return pid
