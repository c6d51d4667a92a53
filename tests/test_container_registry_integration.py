"""Images from a private registry: plain Docker credentials, given as a reference to a secret, pull
the image for the job; the password never appears in anything the worker prints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.containers import Jobs, container_route, land, unit_lines
from tests.support.images import docker_client
from tests.support.process import WatcherProcess, base_config
from tests.support.registry import Registry, private_registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with private_registry() as registry:
        yield registry


def test_a_private_image_is_pulled_with_the_routes_credentials(
    docker_jobs: Jobs, registry: Registry, s3: Any, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    route = container_route(
        "private",
        "docker",
        docker_jobs.work_dir,
        image=registry.image,
        pull="always",
        command="echo pulled and ran",
        registry_auth={"username": registry.username, "password": "${env:REGISTRY_PASSWORD}"},
    )
    worker = WatcherProcess(base_config(queues.url, [route]), tmp_path, env={"REGISTRY_PASSWORD": registry.password})
    try:
        worker.wait_started()
        land(s3, queues, docker_jobs.bucket, "in/x.bin")
        [line] = unit_lines(worker, 1)
        assert line["outcome"] == "ok" and line["output_tail"] == "pulled and ran\n"
        assert worker.events("image pulled")[0]["image"] == registry.image
    finally:
        assert worker.stop() == 0
        docker_client().images.remove(registry.image, force=True)
    assert registry.password not in worker.output()


def test_wrong_credentials_fail_the_pull_and_the_unit_is_retried(
    docker_jobs: Jobs, registry: Registry, s3: Any, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    route = container_route(
        "private",
        "docker",
        docker_jobs.work_dir,
        image=registry.image,
        command="echo never",
        registry_auth={"username": registry.username, "password": "not-the-password"},
    )
    worker = WatcherProcess(base_config(queues.url, [route]), tmp_path)
    try:
        worker.wait_started()
        land(s3, queues, docker_jobs.bucket, "in/x.bin")
        [line] = unit_lines(worker, 1)
        assert line["outcome"] == "retry"
        assert line["error"].startswith(f"docker could not pull image {registry.image}")
        assert worker.metric("watcher_container_jobs_total", {"route": "private", "result": "error"}) == 1
    finally:
        assert worker.stop() == 0
