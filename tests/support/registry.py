"""A private image registry on 127.0.0.1 for the tests: Debian's ``docker-registry`` (the CNCF
distribution registry) with htpasswd (bcrypt) authentication, holding the locally built busybox image.
Docker talks plain HTTP to registries on 127.0.0.0/8 without extra configuration."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.images import busybox_image, docker_client
from tests.support.process import free_port

with warnings.catch_warnings():  # deprecated, but libxcrypt's bcrypt is all htpasswd needs here
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt


@dataclass(frozen=True)
class Registry:
    address: str  # 127.0.0.1:PORT
    username: str
    password: str
    image: str  # a copy of the busybox image, pushed there (and not present locally)


@contextlib.contextmanager
def private_registry() -> Iterator[Registry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("no docker-registry on this machine: run scripts/ensure-docker.sh (apt: docker-registry)")
    username, password = "bot", f"pw-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory(prefix="watcher-registry-") as folder:
        root = Path(folder)
        salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)
        (root / "htpasswd").write_text(f"{username}:{crypt.crypt(password, salt)}\n")
        address = f"127.0.0.1:{free_port()}"
        (root / "config.yml").write_text(
            "version: 0.1\n"
            f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
            f"http: {{addr: {address}}}\n"
            f"auth: {{htpasswd: {{realm: watcher-test, path: {root / 'htpasswd'}}}}}\n"
        )
        with open(root / "log.txt", "wb") as log:
            server = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=log)
        try:
            _wait_for(address)
            image = _push_busybox(address, username, password)
            yield Registry(address, username, password, image)
        finally:
            server.terminate()
            server.wait(10)


def _wait_for(address: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{address}/v2/", timeout=2)
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # up, and asking for credentials
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the test registry did not answer on {address}")


def _push_busybox(address: str, username: str, password: str) -> str:
    client = docker_client()
    repository = f"{address}/watcher-test/busybox-{uuid.uuid4().hex[:8]}"
    client.images.get(busybox_image()).tag(repository, "1")
    output = client.images.push(repository, "1", auth_config={"username": username, "password": password})
    client.images.remove(f"{repository}:1")  # only the registry has it now: a job must pull it
    if '"error"' in output:
        raise RuntimeError(f"push to the test registry failed: {output[-300:]}")
    return f"{repository}:1"
