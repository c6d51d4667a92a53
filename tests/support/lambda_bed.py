"""A test bed that runs real AWS Lambda functions on LocalStack, offline, set up from nothing by the session:

1. the python3.11 runtime image, built from Debian packages and cached (``lambda_runtime.runtime_image``);
2. the loopback registry LocalStack pulls it from, started for the session (``lambda_runtime.runtime_registry``),
   and the image pushed there;
3. a LocalStack able to run Lambda: the one of ``watcher local up`` when it was started with the Lambda settings
   of ``watcher/local/localstack.py`` (``make test`` does that), else a private one on a free port, stopped afterwards;
4. the STAND-IN for LocalStack's Lambda init (``lambda_init_standin.py``) where that LocalStack looks for it.

Functions are created from Python source zipped on the spot. Inside a function, ``AWS_ENDPOINT_URL`` (set by
LocalStack) reaches LocalStack through the Docker bridge; an HTTP server of the test must listen on ``bed.bridge``
(``HostRecorder``) for a function to reach it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.lambda_runtime import (
    LOCAL_TAG,
    RUNTIME_SPEC,
    port_taken,
    push,
    registry_answers,
    runtime_image,
    runtime_registry,
)
from tests.support.process import free_port, wait_until
from tests.support.rootfs import tarball_path, watcher_home
from watcher.local import localstack, localstack_lambda

STANDIN_INIT = Path(__file__).with_name("lambda_init_standin.py")
REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/watcher-lambda-test"


@dataclass
class LambdaBed:
    endpoint: str  # LocalStack, from this host
    port: int
    bridge: str  # this host as the Lambda containers see it (the Docker bridge)
    shared: bool  # the LocalStack of `watcher local up` (True) or one of this session
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def container_endpoint(self) -> str:
        """LocalStack as a function sees it: its ``AWS_ENDPOINT_URL``."""
        return f"http://{self.bridge}:{self.port}"

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def create_function(
        self,
        name: str,
        source: str,
        *,
        timeout: int = 10,
        environment: dict[str, str] | None = None,
        handler: str = "app.handler",
    ) -> str:
        """A python3.11 function whose ``app.py`` is ``source``; returns its ARN once it is Active."""
        client = self.client("lambda")
        arn = client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Handler=handler,
            Role=ROLE,
            Code={"ZipFile": zip_source({"app.py": source})},
            Timeout=timeout,
            Environment={"Variables": environment or {}},
        )["FunctionArn"]
        client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        return str(arn)

    def containers_of(self, function: str) -> list[str]:
        """Names of the containers (running or not) LocalStack made for ``function`` on this bed's LocalStack."""
        import docker

        marker = f"{self.bridge}:{self.port}/"
        found = docker.from_env().containers.list(all=True, filters={"name": f"-lambda-{function.lower()}-"})
        return [c.name for c in found if any(marker in item for item in c.attrs["Config"]["Env"] or [])]


def zip_source(files: dict[str, str]) -> bytes:
    """A deployment package: world-readable files, as the function runs as an unprivileged user."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def _shared_localstack_runs_lambda() -> bool:
    """The LocalStack of `watcher local up` runs, and was started with the Lambda settings this code expects."""
    settings = localstack.running_settings()
    if settings is None or localstack.health() is None:
        return False
    expected = localstack.environment()
    keys = ("GATEWAY_LISTEN", "LAMBDA_RUNTIME_IMAGE_MAPPING", "LAMBDA_INIT_RELEASE_VERSION", "HOSTNAME_FROM_LAMBDA")
    return all(settings.get(key) == expected.get(key) for key in keys) and settings.get("OVERRIDE_IN_DOCKER") == "0"


def install_standin_init(state: Path) -> Path:
    """Put the init stand-in where LocalStack looks for its init (it copies it into every Lambda container)."""
    target = localstack_lambda.lambda_init_path(state)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_bytes() != STANDIN_INIT.read_bytes():
        partial = target.with_name(f".init-{os.getpid()}")
        shutil.copyfile(STANDIN_INIT, partial)
        partial.chmod(0o755)
        partial.replace(target)  # a container being created never copies half a file
    return target


def _keep_log(log: Path) -> None:
    """The private LocalStack's log outlives its state: ``$WATCHER_HOME/lambda-bed-localstack.log``."""
    if log.exists():
        shutil.copyfile(log, watcher_home() / "lambda-bed-localstack.log")


@contextlib.contextmanager
def lambda_bed(log: Any = sys.stderr) -> Iterator[LambdaBed]:
    timings: dict[str, float] = {}
    started = time.monotonic()
    runtime_image()
    timings["image"] = time.monotonic() - started
    bridge = localstack_lambda.docker_bridge_address()
    if bridge is None:
        raise RuntimeError("no Docker bridge on this host: Lambda containers could not reach LocalStack")
    shared = _shared_localstack_runs_lambda()
    registry = localstack_lambda.LAMBDA_REGISTRY
    if not shared and port_taken(registry) and not registry_answers(registry):
        registry = f"127.0.0.1:{free_port()}"  # our own LocalStack can be told another one
    mark = time.monotonic()
    with runtime_registry(registry), contextlib.ExitStack() as stack:
        timings["registry"] = time.monotonic() - mark
        mark = time.monotonic()
        push(LOCAL_TAG, localstack_lambda.lambda_image_mapping(registry)["python3.11"])
        timings["push"] = time.monotonic() - mark
        mark = time.monotonic()
        if shared:
            port, state = localstack.PORT, localstack.state_dir()
        else:
            port, state = free_port(), Path(tempfile.mkdtemp(prefix="watcher-lambda-localstack-"))
            stack.callback(shutil.rmtree, state, True)
            stack.callback(_keep_log, state / "localstack.log")
            localstack.up(out=log, port=port, state=state, registry=registry)
            stack.callback(localstack.down, out=log, state=state)
        timings["localstack"] = time.monotonic() - mark
        install_standin_init(state)
        timings["setup"] = time.monotonic() - started
        yield LambdaBed(f"http://127.0.0.1:{port}", port, bridge, shared, timings)


def missing_prerequisite() -> str | None:
    """Why this machine cannot hold the bed (the tests then skip saying so), or None."""
    import docker

    try:
        docker.from_env(timeout=10).ping()
    except docker.errors.DockerException as exc:
        return f"no Docker engine answers ({exc}): run scripts/ensure-docker.sh"
    if shutil.which("docker-registry") is None:
        return "no docker-registry (Debian package docker-registry): run scripts/ensure-docker.sh"
    if not localstack_lambda.docker_bridge_address():
        return "the Docker engine's bridge is not on this host: Lambda containers could not reach LocalStack"
    if os.geteuid() != 0 and not tarball_path(RUNTIME_SPEC).exists():
        return "building the Lambda runtime image needs root (debootstrap) the first time"
    return None


@pytest.fixture(scope="session")
def lambda_env() -> Iterator[LambdaBed]:
    """The Lambda test bed for the whole session (see the module docstring)."""
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    with lambda_bed() as bed:
        bed.timings["fixture"] = time.monotonic() - started
        yield bed
        figures = ", ".join(f"{key} {value:.1f}s" for key, value in bed.timings.items())
        print(f"\nlambda bed ({'shared' if bed.shared else 'private'} LocalStack): {figures}", file=sys.stderr)


class HostRecorder:
    """An HTTP server on this host that Lambda functions can call (it listens on the Docker bridge's address):
    it keeps every JSON document POSTed to it, and answers ``{"seen": <count so far>}``."""

    def __init__(self, address: str) -> None:
        self.posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with recorder._lock:
                    recorder.posts.append(body)
                    answer = json.dumps({"seen": len(recorder.posts)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.posts)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def host_recorder(lambda_env: LambdaBed) -> Iterator[HostRecorder]:
    recorder = HostRecorder(lambda_env.bridge)
    yield recorder
    recorder.close()


@pytest.fixture
def functions(lambda_env: LambdaBed) -> Iterator[list[str]]:
    """Names of the functions a test creates: deleted afterwards with their mappings, and LocalStack must then
    remove their containers (the init stand-in ends on `docker stop`)."""
    created: list[str] = []
    yield created
    client = lambda_env.client("lambda")
    for function in created:
        for mapping in client.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]:
            client.delete_event_source_mapping(UUID=mapping["UUID"])
        client.delete_function(FunctionName=function)
    wait_until(lambda: not any(lambda_env.containers_of(f) for f in created), 30, 0.5, "their containers removed")
