"""Where a container job's script runs: the interface, and the ``process`` runtime.

A runtime is given a prepared job directory (``input/`` holding the file, ``output/`` empty,
``script.sh``) and the contract's environment, runs the script with ``/bin/sh``, writes everything
the script prints to ``log.txt`` and reports how it ended. It never raises for the script's own
failure (that is the handler's decision); it raises ``RetryableError`` when it could not run the
script at all (Docker unreachable), ``PermanentError`` when it never will (no such image).

``process`` runs the script on the host, for hosts without Docker and for the demo. It isolates
nothing: the script runs as the worker's user, in a session of its own (so its whole process group
is killed at the end), with an environment holding only the contract, PATH, HOME and LANG. The
worker's credentials are not handed to it, but a script running as the same user can still read
what that user can (the worker's /proc/<pid>/environ included): only trusted scripts, or Docker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar, Protocol

from watcher.blocking import run_blocking, shielded
from watcher.handlers.workspace import JobDir

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class JobPaths:
    """Where the script sees its input folder, output folder and script file."""

    input: str
    output: str
    script: str
    workdir: str


@dataclass(frozen=True, slots=True)
class JobSpec:
    job: JobDir
    environment: dict[str, str]
    timeout_seconds: float | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobResult:
    exit_code: int | None  # None when it was killed before reporting one
    script_seconds: float  # from the script's start to its end, as the runtime measured it
    timed_out: bool = False
    oom_killed: bool = False


class Runtime(Protocol):
    name: ClassVar[str]

    def paths(self, job: JobDir) -> JobPaths: ...

    async def prepare(self) -> None:
        """Make sure jobs can run (the image is there); called before each job, cheap when ready."""
        ...

    async def run(self, spec: JobSpec) -> JobResult: ...

    async def sweep(self, is_abandoned: Callable[[Path], bool]) -> int:
        """Remove what jobs of dead workers left behind in the runtime; return how many."""
        ...

    async def close(self) -> None: ...


class ProcessRuntime:
    name: ClassVar[str] = "process"

    def __init__(self, work_dir: Path) -> None:
        self._work_dir = work_dir

    def paths(self, job: JobDir) -> JobPaths:
        return JobPaths(str(job.input), str(job.output), str(job.script), str(job.root))

    async def prepare(self) -> None:
        return None

    async def run(self, spec: JobSpec) -> JobResult:
        job = spec.job
        environment = {
            "PATH": os.environ.get("PATH", _DEFAULT_PATH),
            "HOME": str(job.root),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            **spec.environment,
        }
        started = time.perf_counter()
        with open(job.log, "wb") as log:  # noqa: ASYNC230  (creating an empty local file)
            try:
                process = await self._spawn(job, environment, log)
            except asyncio.CancelledError:  # it may have started before the cancellation reached us
                await shielded(run_blocking(_kill_where, lambda output: output == job.output))
                raise
        return await self._wait(process, spec, started)

    async def _spawn(self, job: JobDir, environment: dict[str, str], log: BinaryIO) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            "/bin/sh",
            str(job.script),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=job.root,
            env=environment,
            start_new_session=True,  # its own process group: killed as a whole below
        )

    async def _wait(self, process: asyncio.subprocess.Process, spec: JobSpec, started: float) -> JobResult:
        timed_out = False
        exit_code: int | None
        try:
            try:
                exit_code = await asyncio.wait_for(process.wait(), spec.timeout_seconds)
            except TimeoutError:
                timed_out = True
                _kill_group(process.pid)
                await process.wait()
                exit_code = process.returncode
        finally:
            # Background children the script left running (or all of it, when we are cancelled).
            _kill_group(process.pid)
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        seconds = time.perf_counter() - started
        return JobResult(None if timed_out else exit_code, seconds, timed_out=timed_out)

    async def sweep(self, is_abandoned: Callable[[Path], bool]) -> int:
        return await run_blocking(self._sweep, is_abandoned)

    def _sweep(self, is_abandoned: Callable[[Path], bool]) -> int:
        """Kill scripts still running for a worker that died (its job's process group survives it,
        being a session of its own). They are recognised by the ``TMP_OUTPUT_DIR`` they inherited,
        which names a work area under ``work_dir`` whose lock nobody holds."""
        area_prefix = f"{self._work_dir}/area-"
        return _kill_where(lambda output: str(output).startswith(area_prefix) and is_abandoned(output.parents[1]))

    async def close(self) -> None:
        return None


def _kill_where(wanted: Callable[[Path], bool]) -> int:
    """SIGKILL the processes of this mount namespace whose ``TMP_OUTPUT_DIR`` is ``wanted``.
    (Another namespace, a service with a private /tmp say, sees other files under the same paths.)"""
    own_namespace = _mount_namespace("self")
    killed = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environment = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        found = next((v for v in environment if v.startswith(b"TMP_OUTPUT_DIR=")), None)
        if found is None or _mount_namespace(proc.name) != own_namespace:
            continue
        if wanted(Path(found.split(b"=", 1)[1].decode(errors="replace"))):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
    return killed


def _mount_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def read_tail(path: Path, limit: int) -> str:
    """The last ``limit`` characters of a log file (decoded leniently), without reading all of it."""
    if limit <= 0:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit * 4))
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return text[-limit:]
