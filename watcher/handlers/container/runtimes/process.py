"""The ``process`` runtime: the script runs on the host, for hosts without Docker and for the demo.

It isolates nothing: the script runs as the worker's user, in a session of its own (so its whole
process group is killed at the end), with an environment holding only the contract, PATH, HOME and
LANG. The worker's credentials are not handed to it, but a script running as the same user can still
read what that user can (the worker's /proc/<pid>/environ included): only trusted scripts, or Docker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from watcher.blocking import run_blocking, shielded
from watcher.handlers.container.contract import JobPaths
from watcher.handlers.container.options import ContainerOptions
from watcher.handlers.container.runtimes.base import JobResult, JobSpec, RuntimeContext
from watcher.handlers.container.workspace import JobDir, mount_namespace

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ProcessRuntime:
    name: ClassVar[str] = "process"
    option_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, work_dir: Path) -> None:
        self._work_dir = work_dir

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[str]:
        return []

    @classmethod
    def create(cls, options: ContainerOptions, context: RuntimeContext) -> ProcessRuntime:
        return cls(options.work_dir)

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
    own_namespace = mount_namespace()
    killed = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environment = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        found = next((v for v in environment if v.startswith(b"TMP_OUTPUT_DIR=")), None)
        if found is None or mount_namespace(proc.name) != own_namespace:
            continue
        if wanted(Path(found.split(b"=", 1)[1].decode(errors="replace"))):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
    return killed


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
