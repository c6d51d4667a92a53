"""Where a container job's script runs: what every runtime is given and reports.

A runtime is given a prepared job directory (``input/`` holding the file, ``output/`` empty,
``script.sh``) and the contract's environment, runs the script with ``/bin/sh``, writes everything
the script prints to ``log.txt`` and reports how it ended. It never raises for the script's own
failure (that is the handler's decision); it raises ``RetryableError`` when it could not run the
script at all (Docker unreachable), ``PermanentError`` when it never will (no such image).

A runtime is one module under this folder plus one line in ``RUNTIMES`` (watcher.handlers.container.
runtimes): it declares the options only it takes, checks them, and is created by the handler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from watcher.config.schema import AwsConfig
from watcher.handlers.container.contract import JobPaths
from watcher.handlers.container.options import ContainerOptions
from watcher.handlers.container.workspace import JobDir


@dataclass(frozen=True, slots=True)
class JobSpec:
    job: JobDir
    environment: dict[str, str]
    timeout_seconds: float | None = None
    request_id: str = ""  # for the runtime's own bookkeeping (a container label, a job name)


@dataclass(frozen=True, slots=True)
class JobResult:
    exit_code: int | None  # None when it was killed before reporting one
    script_seconds: float  # from the script's start to its end, as the runtime measured it
    timed_out: bool = False
    oom_killed: bool = False


@dataclass(frozen=True, slots=True)
class RuntimeContext:
    """What the handler gives the runtime it creates."""

    route: str
    area: Path  # the handler's work area (watcher.handlers.container.workspace.WorkArea)
    aws: AwsConfig


class Runtime(Protocol):
    name: ClassVar[str]
    option_fields: ClassVar[tuple[str, ...]]  # handler options only this runtime takes

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[str]:
        """Problems with the options this runtime needs (``.field: message``)."""
        ...

    @classmethod
    def create(cls, options: ContainerOptions, context: RuntimeContext) -> Runtime: ...

    def paths(self, job: JobDir) -> JobPaths: ...

    async def prepare(self) -> None:
        """Make sure jobs can run (the image is there); called before each job, cheap when ready."""
        ...

    async def run(self, spec: JobSpec) -> JobResult: ...

    async def sweep(self, is_abandoned: Callable[[Path], bool]) -> int:
        """Remove what jobs of dead workers left behind in the runtime; return how many."""
        ...

    async def close(self) -> None: ...
