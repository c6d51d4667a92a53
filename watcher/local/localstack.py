"""``watcher local up|down|status``: an embedded LocalStack on 127.0.0.1:4566 for development, demos
and tests. LocalStack runs natively from PyPI (no Docker) in a virtualenv of its own, because its
pins clash with ours; ``up`` creates that virtualenv the first time. If something already answers on
the port, it is used as it is."""

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

HOST, PORT = "127.0.0.1", 4566
ENDPOINT = f"http://{HOST}:{PORT}"
SERVICES = "s3,sqs,sns,events,sts,iam,secretsmanager,ssm"
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


def health(timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/_localstack/health", timeout=timeout) as response:
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
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing LocalStack into {venv_dir()} (first time only) ...", file=out, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv_dir())], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    return python


def up(timeout: float = 120.0, out: Any = sys.stderr) -> bool:
    """Start LocalStack unless something answers already; True when this call started it."""
    if _ready(health()):
        print(f"LocalStack already answers on {ENDPOINT}", file=out)
        return False
    python = ensure_venv(out)
    state = state_dir()
    (state / "volume").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GATEWAY_LISTEN": f"{HOST}:{PORT}",
        "SERVICES": SERVICES,
        "LOCALSTACK_VOLUME_DIR": str(state / "volume"),
        "DISABLE_EVENTS": "1",  # no telemetry: there is no network to send it to
        "SKIP_SSL_CERT_DOWNLOAD": "1",
    }
    pid = service.start(
        "localstack",
        [str(python), "-m", "localstack.runtime.main"],
        state,
        lambda: _ready(health()),
        env=env,
        timeout=timeout,
    )
    print(f"LocalStack ready on {ENDPOINT} (pid {pid})", file=out)
    return True


def down(out: Any = sys.stderr) -> bool:
    pid = service.stop("localstack", state_dir())
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
