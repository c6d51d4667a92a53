"""``watcher local up|down|status``: an embedded LocalStack on 127.0.0.1:4566 (``WATCHER_LOCALSTACK_PORT``)
for development, demos and tests. LocalStack runs natively from PyPI (no Docker) in a virtualenv of its own,
because its pins clash with ours; ``up`` creates that virtualenv the first time. If something already answers
on the port, it is used as it is.

It is started able to run Lambda functions on the local Docker engine, offline (watcher.local.localstack_lambda
says what that takes), with ``OVERRIDE_IN_DOCKER=0`` and a private ``FILESYSTEM_ROOT``: this machine has
``/.dockerenv``, and LocalStack would otherwise believe it runs in its own container (shared
``/var/lib/localstack``, wrong networking).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from watcher.local import service
from watcher.local.localstack_lambda import (
    LAMBDA_INIT_VERSION,
    docker_bridge_address,
    filesystem_root,
    lambda_image_mapping,
    lock_fix,
)

HOST = "127.0.0.1"
PORT = int(os.environ.get("WATCHER_LOCALSTACK_PORT") or 4566)
ENDPOINT = f"http://{HOST}:{PORT}"
SERVICES = "s3,sqs,sns,events,sts,iam,secretsmanager,ssm,lambda,logs"
# Verified to run on Python 3.11: newer LocalStack releases need 3.12.
PACKAGES = (
    "localstack-core[runtime]==4.13.1",
    "cbor2<5.7",
    "pyopenssl<24.3",
    "cryptography<44",
    "service_identity<24.3",
    "joserfc<1.1",
)


def venv_dir() -> Path:
    return Path(os.environ.get("WATCHER_LOCALSTACK_VENV", service.home() / "localstack-venv"))


def state_dir() -> Path:
    return Path(os.environ.get("WATCHER_LOCALSTACK_STATE", service.home() / "localstack"))


def environment(port: int | None = None, state: Path | None = None, registry: str | None = None) -> dict[str, str]:
    """The LocalStack settings ``up`` starts it with (besides the caller's own environment)."""
    port = port or PORT
    state = state or state_dir()
    settings = {
        # LocalStack 4.13's server binds 0.0.0.0:<port> whatever IPv4 host this names (a TODO in its
        # runtime/server/twisted.py), so Lambda containers reach it on the Docker bridge as it is; a second
        # address on the same port ("127.0.0.1:4566,172.17.0.1:4566") fails with "Address already in use".
        "GATEWAY_LISTEN": f"{HOST}:{port}",
        "SERVICES": SERVICES,
        "DISABLE_EVENTS": "1",  # no telemetry: there is no network to send it to
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DNS_ADDRESS": "0",  # its DNS server needs an upstream that resolves localstack.cloud: none offline
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(filesystem_root(state)),
        "LAMBDA_RUNTIME_IMAGE_MAPPING": json.dumps(lambda_image_mapping(registry)),
        "LAMBDA_INIT_RELEASE_VERSION": LAMBDA_INIT_VERSION,
        # An idle SQS event source mapping polls again within a second (default: backs off to 10 s).
        "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC": "1",
    }
    bridge = docker_bridge_address()
    if bridge:  # AWS_ENDPOINT_URL and the init's callbacks use it; LocalStack's own guess fails on Docker 20.10
        settings["HOSTNAME_FROM_LAMBDA"] = bridge
    return settings


def health(timeout: float = 2.0, port: int | None = None) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port or PORT}/_localstack/health", timeout=timeout) as response:
            result: dict[str, Any] = json.load(response)
            return result
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _ready(status: dict[str, Any] | None) -> bool:
    if not status:
        return False
    services = status.get("services", {})
    return all(services.get(s) in ("available", "running") for s in ("s3", "sqs"))


def ensure_venv(out: Any = sys.stderr) -> Path:
    python = venv_dir() / "bin" / "python"
    probe = [str(python), "-c", "import localstack.runtime.main"]
    with service.locked(venv_dir().with_name(venv_dir().name + ".lock")):  # two `up` at once install once
        if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
            return python
        print(f"installing LocalStack into {venv_dir()} (first time only) ...", file=out, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir())], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    return python


def running_settings(state: Path | None = None) -> dict[str, str] | None:
    """The LocalStack settings of the instance ``up`` started from ``state`` when it still runs (else None)."""
    record = (state or state_dir()) / "localstack.json"
    try:
        recorded = json.loads(record.read_text())
        os.kill(int(recorded["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    settings: dict[str, str] = recorded["environment"]
    return settings


def up(
    timeout: float = 120.0,
    out: Any = sys.stderr,
    *,
    port: int | None = None,
    state: Path | None = None,
    registry: str | None = None,
) -> bool:
    """Start LocalStack unless something answers already; True when this call started it."""
    port = port or PORT
    state = state or state_dir()
    endpoint = f"http://{HOST}:{port}"
    if _ready(health(port=port)):
        print(f"LocalStack already answers on {endpoint}", file=out)
        if running_settings(state) is None:  # not started by this code: its Lambda settings are unknown
            print("  (not started by `watcher local up`: Lambda functions may not run on it)", file=out)
        return False
    python = ensure_venv(out)
    filesystem_root(state).mkdir(parents=True, exist_ok=True)
    settings = environment(port, state, registry)
    python_path = os.pathsep.join(filter(None, [str(lock_fix(state)), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, **settings, "PYTHONPATH": python_path}
    command = [str(python), "-m", "localstack.runtime.main"]
    pid = service.start("localstack", command, state, lambda: _ready(health(port=port)), env=env, timeout=timeout)
    (state / "localstack.json").write_text(json.dumps({"pid": pid, "port": port, "environment": settings}))
    print(f"LocalStack ready on {endpoint} (pid {pid})", file=out)
    return True


def down(out: Any = sys.stderr, *, state: Path | None = None) -> bool:
    state = state or state_dir()
    # LocalStack alone first: on its way out it stops its Lambda containers with `docker stop` children of its
    # own, which a SIGTERM to the whole group would kill first (leaving the containers running).
    pid = service.stop("localstack", state, leader_only=True, wait=30.0)
    (state / "localstack.json").unlink(missing_ok=True)
    if pid is None:
        print("no LocalStack started by watcher is running", file=out)
        return False
    print(f"LocalStack (pid {pid}) stopped", file=out)
    return True


def status() -> tuple[bool, str]:
    current = health()
    if current is None:
        return False, f"LocalStack is not answering on {ENDPOINT}"
    services = {k: v for k, v in current.get("services", {}).items() if v != "disabled"}
    return _ready(current), json.dumps({"endpoint": ENDPOINT, "version": current.get("version"), "services": services})
