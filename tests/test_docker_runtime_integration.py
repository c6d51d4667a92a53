"""The docker runtime on the real engine, below the worker: cancellation at any moment leaves no
container behind, and the start-up sweep only touches what is provably its own."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest

from tests.support.containers import containers_of
from tests.support.images import busybox_image, docker_client
from watcher.config.schema import AwsConfig
from watcher.handlers.container.handler import parse as parse_options
from watcher.handlers.container.runtimes.base import JobSpec
from watcher.handlers.container.runtimes.docker import (
    LABEL_AREA,
    LABEL_HOST,
    LABEL_MANAGED,
    LABEL_MOUNT_NAMESPACE,
    DockerRuntime,
)
from watcher.handlers.container.workspace import WorkArea, is_abandoned, mount_namespace

pytestmark = pytest.mark.integration


@pytest.fixture
def area(tmp_path: Path) -> Iterator[WorkArea]:
    area = WorkArea(tmp_path / "work")
    area.open()
    yield area
    area.close()


def runtime_for(area: WorkArea, command: str, **options: object) -> DockerRuntime:
    parsed, problems = parse_options(
        {"image": busybox_image(), "command": command, "work_dir": str(area.base), **options}
    )
    assert parsed is not None, problems
    return DockerRuntime(parsed, AwsConfig(), "route", area.path)


async def test_a_job_cancelled_at_any_moment_leaves_no_container(area: WorkArea) -> None:
    runtime = runtime_for(area, "sleep 30")
    await runtime.prepare()
    # From "still creating the container" to "waiting for it to exit".
    for delay in (0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
        job = area.new_job(f"{int(delay * 1000):032d}")
        job.write_script("sleep 30\n")
        run = asyncio.ensure_future(runtime.run(JobSpec(job, {}, None)))
        await asyncio.sleep(delay)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert containers_of(area.base) == [], f"a container outlived a cancellation after {delay}s"
        job.remove()
    await runtime.close()


async def test_a_job_past_its_timeout_is_killed_while_others_run(area: WorkArea) -> None:
    # Several long jobs at once hold no thread each, so the kill of the one that timed out is not
    # queued behind them.
    runtime = runtime_for(area, "sleep 30")
    await runtime.prepare()
    jobs = []
    for index in range(4):
        job = area.new_job(f"{index:032d}")
        job.write_script("sleep 30\n")
        jobs.append(job)
    long_ones = [asyncio.ensure_future(runtime.run(JobSpec(job, {}, None))) for job in jobs[:3]]
    result = await asyncio.wait_for(runtime.run(JobSpec(jobs[3], {}, 1.0)), 20)
    assert result.timed_out and result.exit_code is None
    for run in long_ones:
        run.cancel()
    await asyncio.gather(*long_ones, return_exceptions=True)
    assert containers_of(area.base) == []
    await runtime.close()


def test_the_sweep_removes_only_containers_of_dead_areas_of_its_own_work_dir(area: WorkArea, tmp_path: Path) -> None:
    client = docker_client()
    image = busybox_image()
    mine = {LABEL_MANAGED: "true", LABEL_HOST: socket.gethostname(), LABEL_MOUNT_NAMESPACE: mount_namespace()}
    made = {
        # an area of this work_dir whose owner is gone (no lock file): removed
        "dead": {**mine, LABEL_AREA: str(area.base / "area-dead00000000")},
        # an area of another work_dir (say another service's): not ours to judge
        "elsewhere": {**mine, LABEL_AREA: str(tmp_path / "other" / "area-dead00000000")},
        # same path, other mount namespace (a service with a private /tmp): kept
        "other_namespace": {**mine, LABEL_MOUNT_NAMESPACE: "4026530000", LABEL_AREA: str(area.base / "area-x")},
        # this very handler's own area: alive
        "alive": {**mine, LABEL_AREA: str(area.path)},
    }
    containers = {name: client.containers.create(image, ["true"], labels=labels) for name, labels in made.items()}
    try:
        runtime = runtime_for(area, "true")
        removed = runtime._sweep(is_abandoned)
        left = {c.id for c in client.containers.list(all=True, filters={"label": f"{LABEL_MANAGED}=true"})}
        assert removed == 1
        assert {name for name, c in containers.items() if c.id in left} == {"elsewhere", "other_namespace", "alive"}
    finally:
        for container in containers.values():
            with contextlib.suppress(docker.errors.NotFound):  # the one the sweep removed
                container.remove(force=True)
