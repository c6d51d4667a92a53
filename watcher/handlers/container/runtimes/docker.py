"""The ``docker`` runtime: one locked-down container per job, through the Docker SDK.

Every SDK call is blocking, so each runs in watcher.blocking's pool. A container gets the job's
``input/`` (read-only), ``output/`` and ``script.sh`` (read-only) as bind mounts under ``/watcher``,
all capabilities dropped, ``no-new-privileges``, the route's memory (swap off), CPU and pids limits,
network ``none`` unless the route says otherwise, and never the Docker socket. Containers carry
labels naming this host and the work area of the handler that made them, so that a worker starting
after a crash removes exactly the containers whose owner is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from watcher.blocking import run_blocking, run_control, run_waiting, shielded
from watcher.config.schema import AwsConfig
from watcher.errors import RetryableError
from watcher.handlers.container.contract import JobPaths
from watcher.handlers.container.options import ContainerOptions
from watcher.handlers.container.runtimes.base import JobResult, JobSpec, RuntimeContext
from watcher.handlers.container.runtimes.docker_images import ImageSource, docker_error
from watcher.handlers.container.workspace import JobDir, mount_namespace
from watcher.logs import get_logger

_log = get_logger("watcher.handlers.container")
LABEL_MANAGED = "io.watcher.managed"
LABEL_HOST = "io.watcher.host"
LABEL_AREA = "io.watcher.area"
LABEL_MOUNT_NAMESPACE = "io.watcher.mount_namespace"
LABEL_ROUTE = "io.watcher.route"
LABEL_REQUEST_ID = "io.watcher.request_id"
MOUNT_ROOT = "/watcher"
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")
_WAIT_SLICE_SECONDS = 1.0


class DockerRuntime:
    name: ClassVar[str] = "docker"
    option_fields: ClassVar[tuple[str, ...]] = ()  # its options (image, limits, network...) are common ones

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[str]:
        image = options.get("image")
        if not isinstance(image, str) or not image.strip():
            return [".image: required for the docker runtime, e.g. image: my-registry/ffmpeg:6"]
        return []

    @classmethod
    def create(cls, options: ContainerOptions, context: RuntimeContext) -> DockerRuntime:
        return cls(options, context.aws, context.route, context.area)

    def __init__(self, options: ContainerOptions, aws: AwsConfig, route: str, area: Path) -> None:
        assert options.image is not None  # validated: the docker runtime requires an image
        self._options = options
        self._image = options.image
        self._aws = aws
        self._route = route
        self._area = area
        self._host = socket.gethostname()
        self._mount_namespace = mount_namespace()
        self._client: docker.DockerClient | None = None
        self._images = ImageSource(options, aws)

    def paths(self, job: JobDir) -> JobPaths:
        return JobPaths(f"{MOUNT_ROOT}/input", f"{MOUNT_ROOT}/output", f"{MOUNT_ROOT}/script.sh", MOUNT_ROOT)

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=120)
            except docker.errors.DockerException as exc:
                raise RetryableError(f"docker engine not reachable: {exc}") from None
        return self._client

    # --- the image ------------------------------------------------------------------------------

    async def prepare(self) -> None:
        # A pull may take minutes: in the pool for long calls, not the one for control calls.
        await run_blocking(self._images.ensure, self._docker())

    # --- one job --------------------------------------------------------------------------------

    def _create(self, spec: JobSpec, name: str) -> Container:
        job, options = spec.job, self._options
        limits: dict[str, Any] = {"pids_limit": options.pids_limit}
        if options.memory is not None:
            limits["mem_limit"] = options.memory
            limits["memswap_limit"] = options.memory  # the same figure: no swap on top
        if options.cpus is not None:
            limits["nano_cpus"] = int(options.cpus * 1e9)
        labels = {**self._owner_labels(), LABEL_ROUTE: self._route, LABEL_REQUEST_ID: spec.request_id}
        try:
            return self._docker().containers.create(
                self._image,
                command=["/bin/sh", f"{MOUNT_ROOT}/script.sh"],
                name=name,
                environment=spec.environment,
                working_dir=MOUNT_ROOT,
                volumes={
                    str(job.input): {"bind": f"{MOUNT_ROOT}/input", "mode": "ro"},
                    str(job.output): {"bind": f"{MOUNT_ROOT}/output", "mode": "rw"},
                    str(job.script): {"bind": f"{MOUNT_ROOT}/script.sh", "mode": "ro"},
                },
                labels=labels,
                user=options.user or f"{os.getuid()}:{os.getgid()}",
                network_mode=options.network,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                privileged=False,
                detach=True,
                **limits,
            )
        except docker.errors.ImageNotFound as exc:  # removed since prepare(): the next try pulls it
            raise RetryableError(f"image {self._image} vanished before the job started: {exc}") from None
        except docker.errors.DockerException as exc:
            raise docker_error(exc, f"create a container from {self._image}") from None

    def _owner_labels(self) -> dict[str, str]:
        return {
            LABEL_MANAGED: "true",
            LABEL_HOST: self._host,
            LABEL_MOUNT_NAMESPACE: self._mount_namespace,
            LABEL_AREA: str(self._area),
        }

    async def run(self, spec: JobSpec) -> JobResult:
        # Named before it exists: whatever interrupts us from here on (a cancellation while the
        # engine is still creating it included), the finally below removes it by that name.
        name = _NAME_UNSAFE.sub("-", f"watcher-{self._route}-{spec.job.root.name}-{secrets.token_hex(3)}")[:120]
        # A cancelled await does not stop a call already in its thread: the create goes on, so the
        # clean-up waits for the engine's answer before removing by name.
        creating = asyncio.ensure_future(run_control(self._create, spec, name))
        try:
            container = await asyncio.shield(creating)
            try:
                await run_control(container.start)
            except docker.errors.DockerException as exc:
                raise docker_error(exc, f"start a container from {self._image}") from None
            started = time.perf_counter()
            timed_out = False
            try:
                state = await asyncio.wait_for(self._wait_for_exit(container), spec.timeout_seconds)
            except TimeoutError:
                timed_out = True
                await run_control(_kill, container)
                state = await self._wait_for_exit(container)
            await run_blocking(_save_logs, container, spec.job.log)
            exit_code = state.get("ExitCode")
            seconds = _script_seconds(state) or (time.perf_counter() - started)
            return JobResult(
                None if timed_out else (exit_code if isinstance(exit_code, int) else None),
                seconds,
                timed_out=timed_out,
                oom_killed=bool(state.get("OOMKilled")),
            )
        finally:
            await shielded(self._remove_after(creating, name))

    async def _wait_for_exit(self, container: Container) -> dict[str, Any]:
        """Wait for the container to exit, a second at a time: the exit is seen at once, and the
        waiting thread is given back every second, so a cancellation or a timeout never waits on
        it. The waits have their own pool (blocking.run_waiting): kills never queue behind them."""
        while not await run_waiting(_exited_within, container, _WAIT_SLICE_SECONDS):
            pass
        return await run_control(_state, container)

    async def _remove_after(self, creating: asyncio.Future[Container], name: str) -> None:
        with contextlib.suppress(Exception):
            await creating  # created or refused: either way the engine is done with it
        await run_control(self._remove_named, name)

    def _remove_named(self, name: str) -> None:
        try:
            self._docker().containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass  # never created, or already gone
        except (docker.errors.DockerException, RetryableError) as exc:
            _log.warning("cannot remove container; the next start removes it", container=name, error=str(exc))

    # --- leftovers ------------------------------------------------------------------------------

    async def sweep(self, is_abandoned: Callable[[Path], bool]) -> int:
        return await run_control(self._sweep, is_abandoned)

    def _sweep(self, is_abandoned: Callable[[Path], bool]) -> int:
        """Remove containers of dead workers: only those made on this host, in this mount namespace
        (so another service's private /tmp is not taken for a missing area) and under this
        handler's work_dir."""
        owner = self._owner_labels()
        wanted = [f"{key}={owner[key]}" for key in (LABEL_MANAGED, LABEL_HOST, LABEL_MOUNT_NAMESPACE)]
        try:
            containers = self._docker().containers.list(all=True, filters={"label": wanted})
        except (docker.errors.DockerException, RetryableError) as exc:
            _log.warning("cannot look for containers left by a previous run", error=str(exc))
            return 0
        removed = 0
        for container in containers:
            area = Path(container.labels.get(LABEL_AREA, "/"))
            if area.parent == self._area.parent and area != self._area and is_abandoned(area):
                _remove(container)
                removed += 1
        return removed

    async def close(self) -> None:
        if self._client is not None:
            await run_control(self._client.close)
            self._client = None


# --- helpers that run in threads ------------------------------------------------------------------


def _kill(container: Container) -> None:
    with contextlib.suppress(docker.errors.APIError):  # it may have ended on its own meanwhile
        container.kill()


def _remove(container: Container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.DockerException as exc:
        _log.warning("cannot remove container", container=container.name, error=str(exc))


def _save_logs(container: Container, path: Path) -> None:
    """Everything the script printed, stdout and stderr interleaved, streamed to a file."""
    with open(path, "wb") as log:
        try:
            for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=False):
                log.write(chunk)
        except docker.errors.DockerException as exc:
            log.write(f"\n[watcher: cannot read the container's output: {exc}]\n".encode())


def _exited_within(container: Container, seconds: float) -> bool:
    try:
        container.wait(timeout=seconds)
    except requests.exceptions.RequestException:  # ReadTimeout: still running
        return False
    except docker.errors.NotFound:
        return True  # removed behind our back: _state reports it dead
    except docker.errors.DockerException as exc:
        raise RetryableError(f"lost track of container {container.name}: {exc}") from None
    return True


def _state(container: Container) -> dict[str, Any]:
    """The container's ``State``; a container removed behind our back counts as dead."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return {"Status": "dead"}
    except docker.errors.DockerException as exc:
        raise RetryableError(f"lost track of container {container.name}: {exc}") from None
    state = container.attrs.get("State") or {}
    return state if isinstance(state, dict) else {"Status": "dead"}


def _script_seconds(state: dict[str, Any]) -> float | None:
    started, finished = _timestamp(state.get("StartedAt")), _timestamp(state.get("FinishedAt"))
    if started is None or finished is None or finished < started:
        return None
    return finished - started


def _timestamp(text: Any) -> float | None:
    """Docker's RFC 3339 times carry nanoseconds, which ``fromisoformat`` does not take."""
    if not isinstance(text, str) or text.startswith("0001-"):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        return None
    base, fraction, zone = match.groups()
    moment = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return moment + (float(f"0.{fraction}") if fraction else 0.0)
