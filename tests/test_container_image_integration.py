"""The Dockerfile, built for real and run for real.

Nothing can be pulled here, so the image is built on a base made on this machine with the same
contents the official python:3.11-slim has for us: Debian bookworm (minbase) with its python3 (3.11),
python3-venv and ca-certificates (tests/support/rootfs.py: debootstrap + `docker import`, cached),
passed as the BASE_IMAGE build argument to both stages. The build stage's pip reads the wheels from a
wheelhouse made on the host and served on 127.0.0.1 (tests/support/wheelhouse.py), through pip's own
settings passed as build arguments; the Dockerfile is the one a machine with PyPI builds as it is.

Then: `watcher --version` and `watcher check` in the image; its user, entrypoint and contents; and the
image as a worker against LocalStack (reached on the Docker bridge, as a container reaches its host),
with a read-only root file system as on ECS, processing a real S3 upload end to end.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Queues
from tests.support.process import REPO, provision_named_queue, wait_until
from tests.support.rootfs import RootfsSpec, rootfs_image, tarball_path
from tests.support.wheelhouse import serve, wheelhouse
from watcher import __version__
from watcher.local.localstack_lambda import docker_bridge_address

IMAGE = "watcher-test/watcher:ci"
BASE_IMAGE = "watcher-local/python:3.11-bookworm"
BASE_SPEC = RootfsSpec(name="python311", packages=("python3", "python3-venv", "ca-certificates"))
USER = "10001:10001"
COMPILERS = ("gcc", "cc", "c++", "g++", "x86_64-linux-gnu-gcc", "make", "ld")


@dataclass
class Built:
    client: Any
    image: Any
    bridge: str
    seconds: dict[str, float]


def build(client: Any, wheels_url: str) -> tuple[Any, str, float]:
    import docker.errors

    started = time.monotonic()
    try:
        image, chunks = client.images.build(
            path=str(REPO),
            tag=IMAGE,
            buildargs={"BASE_IMAGE": BASE_IMAGE, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": wheels_url},
            network_mode="host",  # the build's containers reach the wheelhouse on the host's loopback
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as exc:
        log = "".join(chunk.get("stream", "") for chunk in exc.build_log)
        raise AssertionError(f"docker build failed: {exc}\n{log[-4000:]}") from None
    return image, "".join(chunk.get("stream", "") for chunk in chunks), time.monotonic() - started


@pytest.fixture(scope="module")
def built() -> Iterator[Built]:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=900)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine: {exc}")
    bridge = docker_bridge_address()
    if bridge is None:
        pytest.skip("no local Docker bridge: a container could not reach LocalStack on this host")
    if os.geteuid() != 0 and not tarball_path(BASE_SPEC).exists():
        pytest.skip("the python3.11 base image is built with debootstrap, which needs root the first time")
    seconds: dict[str, float] = {}
    started = time.monotonic()
    rootfs_image(BASE_SPEC, BASE_IMAGE)
    seconds["base image"] = time.monotonic() - started
    started = time.monotonic()
    wheels = wheelhouse()
    seconds["wheelhouse"] = time.monotonic() - started
    previous = None
    with contextlib.suppress(docker.errors.ImageNotFound):
        previous = client.images.get(IMAGE).id
    with serve(wheels) as url:
        image, _, seconds["build"] = build(client, url)
        again, log, seconds["build again"] = build(client, url)
    assert again.id == image.id
    assert "Running in" not in log, "a second build with nothing changed runs no step"
    if previous not in (None, image.id):  # the build this one replaced: drop it once nothing names it
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(previous)
    size = image.attrs["Size"] / 2**20
    base_size = client.images.get(BASE_IMAGE).attrs["Size"] / 2**20
    print(
        f"image {IMAGE}: {size:.0f} MiB (base {base_size:.0f} MiB); "
        + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items())
    )
    yield Built(client, image, bridge, seconds)


def run(
    built: Built, *args: str, entrypoint: list[str] | None = None, volumes: dict[str, Any] | None = None
) -> tuple[int, str]:
    """Run the image to its end; its exit code and its output (stdout and stderr)."""
    container = built.client.containers.create(
        IMAGE, list(args), entrypoint=entrypoint, volumes=volumes or {}, network_mode="none"
    )
    try:
        container.start()
        code = int(container.wait(timeout=120)["StatusCode"])
        return code, container.logs(stdout=True, stderr=True).decode()
    finally:
        container.remove(force=True, v=True)  # with the anonymous volumes of the image's VOLUMEs


def test_the_build_context_holds_only_what_the_image_is_built_from() -> None:
    from docker.utils.build import exclude_paths

    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    context = exclude_paths(str(REPO), [p for p in patterns if p and not p.startswith("#")])
    files = {path for path in context if (REPO / path).is_file()}
    outside = sorted(path for path in files if not path.startswith("watcher/"))
    assert outside == [".dockerignore", "Dockerfile", "README.md", "pyproject.toml"]
    assert all(path.endswith(".py") for path in files if path.startswith("watcher/")), "no caches, no data"
    assert "watcher/commands/run.py" in files


@pytest.mark.integration
def test_the_image_says_its_version_and_checks_a_configuration(built: Built, tmp_path: Path) -> None:
    assert run(built, "--version") == (0, f"watcher {__version__}\n")

    folder = tmp_path / "etc"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)  # readable by the image's user
    good = {
        "queue": {"url": "http://sqs.example:4566/000000000000/q"},
        "routes": [{"name": "all", "handler": {"type": "log"}}],
    }
    (folder / "watcher.yaml").write_text(yaml.safe_dump(good))
    bad = {
        "queue": {"url": "http://sqs.example:4566/000000000000/q"},
        "routes": [{"name": "all", "handler": {"type": "lgo"}}],
    }
    (folder / "bad.yaml").write_text(yaml.safe_dump(bad))
    mount = {str(folder): {"bind": "/etc/watcher", "mode": "ro"}}
    code, output = run(built, "check", "-c", "/etc/watcher/watcher.yaml", volumes=mount)
    assert code == 0, output
    code, output = run(built, "check", "-c", "/etc/watcher/bad.yaml", volumes=mount)
    assert code == 2, output
    assert "routes[0] (all).handler.type: unknown handler type 'lgo'" in output


@pytest.mark.integration
def test_the_image_runs_unprivileged_with_no_compiler_and_no_build_settings(built: Built) -> None:
    config = built.image.attrs["Config"]
    assert (config["User"], config["Entrypoint"], config["Cmd"]) == (
        USER,
        ["watcher"],
        ["run", "-c", "/etc/watcher/watcher.yaml"],
    )
    assert "9400/tcp" in config["ExposedPorts"]
    assert "WATCHER_WORK_DIR=/var/lib/watcher/jobs" in config["Env"]
    probe = "id -u; id -g; command -v watcher; stat -c '%u %a' /var/lib/watcher/jobs; ls -d /src 2>/dev/null; "
    probe += " ".join(f"command -v {name};" for name in COMPILERS)
    probe += " env | grep '^PIP_' || true"
    code, output = run(built, "-c", probe, entrypoint=["/bin/sh"])
    assert (code, output.splitlines()) == (0, ["10001", "10001", "/opt/watcher/bin/watcher", "10001 700"])
    history = " ".join(layer.get("CreatedBy", "") for layer in built.client.api.history(IMAGE))
    assert "PIP_FIND_LINKS" not in history, "the build stage's pip settings stay out of the image"


# What deploy/terraform/modules/ecs-service (config_source "ssm") runs in the container: the config
# from a secret environment variable written to /run/watcher, then the worker as PID 1.
ECS_WRAPPER = (
    "umask 077 && printf '%s\\n' \"$WATCHER_CONFIG_YAML\" > /run/watcher/watcher.yaml"
    " && unset WATCHER_CONFIG_YAML && exec watcher run -c /run/watcher/watcher.yaml"
)


@dataclass
class Wired:
    bucket: str
    queue: str
    config: dict[str, Any]  # as the container sees it: LocalStack on the Docker bridge


@pytest.fixture
def wired(built: Built, s3: Any, sqs: Any, tmp_path: Path) -> Iterator[Wired]:
    """A bucket notifying a queue with a DLQ (`watcher provision`, from the host), and a config whose
    route counts the lines of each uploaded CSV in a job (runtime: process: inside the worker's own
    container, no Docker socket there) that also writes to /tmp."""
    unique = uuid.uuid4().hex[:10]
    bucket, queue = f"image-{unique}", f"watcher-image-{unique}"
    job = 'wc -l < "$INPUT_FILE_PATH" > /tmp/lines-$REQUEST_ID && mv /tmp/lines-$REQUEST_ID "$TMP_OUTPUT_DIR/lines.txt"'
    route = {"name": "line-count", "bucket": bucket, "prefix": "in/", "suffix": ".csv"}
    route["handler"] = {"type": "container", "runtime": "process", "command": job, "output": f"s3://{bucket}/out/"}
    config: dict[str, Any] = {
        "aws": {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:4566"},
        "queue": {"wait_time_seconds": 1, "visibility_timeout": 30, "max_in_flight": 4},
        "worker": {"shutdown_grace_seconds": 5},
        "logging": {"format": "json"},
        "routes": [route],
    }
    provision_named_queue(config, queue, tmp_path)
    config["aws"]["endpoint_url"] = f"http://{built.bridge}:4566"  # the host, seen from a container
    yield Wired(bucket, queue, config)
    for key in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    Queues.existing(sqs, queue).delete()


class Worker:
    """The image running as a worker, detached; its JSON log lines."""

    def __init__(self, built: Built, **options: Any) -> None:
        environment = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", **options.pop("environment", {})}
        self.container = built.client.containers.run(
            IMAGE, detach=True, environment=environment, ports={"9400/tcp": ("127.0.0.1", None)}, **options
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.container.logs().decode().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("event") == name]

    def wait_started(self) -> None:
        wait_until(lambda: self.events("worker started"), 60, 0.5, what=f"the worker: {self.container.logs()!r}")

    def http_status(self, path: str) -> int:
        self.container.reload()
        port = self.container.ports["9400/tcp"][0]["HostPort"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status)

    def stop(self) -> tuple[int, float]:
        """SIGTERM (`docker stop`, as ECS stops a task); the exit code and how long it took."""
        started = time.monotonic()
        self.container.stop(timeout=30)
        code = int(self.container.wait(timeout=30)["StatusCode"])
        return code, time.monotonic() - started

    def remove(self) -> None:
        self.container.remove(force=True, v=True)  # with its anonymous volumes


@pytest.mark.integration
def test_the_image_runs_as_the_ecs_module_runs_it_and_processes_an_upload(built: Built, wired: Wired, s3: Any) -> None:
    """Read-only root file system, the config from an environment variable through /bin/sh into
    /run/watcher, /tmp and the jobs folder writable through the image's VOLUMEs, the worker PID 1."""
    worker = Worker(
        built,
        read_only=True,
        entrypoint=["/bin/sh", "-c"],
        command=[ECS_WRAPPER],
        environment={"WATCHER_CONFIG_YAML": yaml.safe_dump(wired.config), "WATCHER_LOGGING_FORMAT": "json"},
    )
    try:
        worker.wait_started()
        s3.put_object(Bucket=wired.bucket, Key="in/sales 2026.csv", Body=b"a,b\n1,2\n3,4\n")

        def outputs() -> list[str]:
            return [o["Key"] for o in s3.list_objects_v2(Bucket=wired.bucket, Prefix="out/").get("Contents", [])]

        wait_until(lambda: any(k.endswith("/lines.txt") for k in outputs()), 60, 0.5, what="the job's output in S3")
        key = next(k for k in outputs() if k.endswith("/lines.txt"))
        assert s3.get_object(Bucket=wired.bucket, Key=key)["Body"].read().strip() == b"3"
        done = wait_until(
            lambda: [line for line in worker.events("message done") if line.get("key") == "in/sales 2026.csv"],
            30,
            0.5,
            what="the message's line",  # the other messages: s3:TestEvent, skipped
        )
        assert (done[0]["route"], done[0]["outcome"], done[0]["action"]) == ("line-count", "ok", "deleted")
        assert worker.http_status("/readyz") == 200
        code, seconds = worker.stop()
        assert code == 0, worker.container.logs().decode()[-2000:]
        assert seconds < 10, "the worker, PID 1, stops on SIGTERM: no SIGKILL needed"
        assert worker.events("worker stopped")
    finally:
        worker.remove()


@pytest.mark.integration
def test_the_default_command_runs_the_worker_on_the_config_in_etc_watcher(
    built: Built, wired: Wired, tmp_path: Path
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    folder.chmod(0o755)  # readable by the image's user
    (folder / "watcher.yaml").write_text(yaml.safe_dump(wired.config))
    worker = Worker(built, volumes={str(folder): {"bind": "/etc/watcher", "mode": "ro"}})
    try:
        worker.wait_started()
        assert worker.events("worker started")[0]["queue_url"].endswith(f"/{wired.queue}")
        assert worker.stop()[0] == 0
    finally:
        worker.remove()
