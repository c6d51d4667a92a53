"""The AWS Lambda python3.11 runtime image, built here (``public.ecr.aws/lambda/python:3.11`` cannot be pulled),
and the loopback registry LocalStack pulls it from.

The image: Debian bookworm's python3 (3.11) from a debootstrap root file system, with the AWS runtime interface
client (``awslambdaric``, which calls the handler) and boto3 installed as manylinux wheels in ``/var/runtime``,
the way AWS's own python3.11 image carries them (a function's zip may bring its own boto3: ``/var/task`` comes
first on ``sys.path``). LocalStack copies its init (here the stand-in of ``lambda_init_standin.py``) and the
function's code into each container.

LocalStack pulls a function's runtime image when the function is created, even when the engine holds it
already; so the image is pushed to Debian's ``docker-registry`` on 127.0.0.1 (plain HTTP is allowed on
loopback), with its storage under ``$WATCHER_HOME/lambda-registry`` so the second push only sends a manifest.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.support.rootfs import PipInstall, RootfsSpec, rootfs_image, watcher_home

LOCAL_TAG = "watcher-local/lambda-python:3.11"
# What AWS's python3.11 image has at the same path: the init runs it to start the runtime.
BOOTSTRAP = b"""#!/bin/sh
# The python3.11 runtime's bootstrap: the AWS runtime interface client, which calls the handler.
export AWS_EXECUTION_ENV=AWS_Lambda_python3.11
PYTHONPATH="/var/task:/opt/python/lib/python3.11/site-packages:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
exec /usr/bin/python3 -m awslambdaric "$_HANDLER"
"""
RUNTIME_SPEC = RootfsSpec(
    name="lambda-python3.11",
    packages=("python3", "ca-certificates"),
    pip=(PipInstall(("awslambdaric==4.2.2", "boto3==1.44.8"), target="/var/runtime"),),
    files={"/var/runtime/bootstrap": (BOOTSTRAP, 0o755)},
    changes=(
        "ENV LAMBDA_TASK_ROOT=/var/task",
        "ENV LAMBDA_RUNTIME_DIR=/var/runtime",
        "ENV TZ=:/etc/localtime",
        "WORKDIR /var/task",
        'ENTRYPOINT ["/var/rapid/init"]',
    ),
)


def runtime_image() -> str:
    """The local image (built and imported the first time, then cached): ``watcher-local/lambda-python:3.11``."""
    return rootfs_image(RUNTIME_SPEC, LOCAL_TAG)


def registry_storage() -> Path:
    return watcher_home() / "lambda-registry"


def registry_answers(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
            return response.status == 200 and "Docker-Distribution-Api-Version" in response.headers
    except (OSError, urllib.error.URLError):
        return False


def port_taken(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


@contextlib.contextmanager
def runtime_registry(address: str) -> Iterator[str]:
    """Debian's ``docker-registry`` serving on ``address`` (127.0.0.1:PORT), started unless a registry answers
    there already (then it is used and left running); stopped on exit when started here."""
    if registry_answers(address):
        yield address
        return
    if port_taken(address):
        raise RuntimeError(
            f"{address} is taken by something that is not an image registry: set WATCHER_LAMBDA_REGISTRY to a free "
            "127.0.0.1:PORT (LocalStack reads it when it starts: `watcher local down && watcher local up`)"
        )
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("no docker-registry on this machine: run scripts/ensure-docker.sh (apt: docker-registry)")
    storage = registry_storage()
    (storage / "data").mkdir(parents=True, exist_ok=True)
    config = storage / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {storage / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: {address}}}\n"
    )
    with open(storage / "registry.log", "ab") as log:
        server = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not registry_answers(address):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not start on {address}; see {storage / 'registry.log'}")
            time.sleep(0.1)
        yield address
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def push(local_tag: str, remote: str) -> str:
    """Tag ``local_tag`` as ``remote`` (REGISTRY/REPO:TAG) and push it; returns ``remote``."""
    import docker
    import docker.errors

    client = docker.from_env(timeout=600)
    repository, tag = remote.rsplit(":", 1)
    image = client.images.get(local_tag)
    previous = None
    with contextlib.suppress(docker.errors.ImageNotFound):
        previous = client.images.get(remote)
    image.tag(repository, tag)
    output = client.images.push(repository, tag)
    if '"error"' in output:
        raise RuntimeError(f"push of {remote} failed: {output[-500:]}")
    if previous is not None and previous.id != image.id:  # an earlier build, now named by nothing
        with contextlib.suppress(docker.errors.APIError):
            previous.reload()
            if not previous.tags:
                client.images.remove(previous.id)
    return remote
