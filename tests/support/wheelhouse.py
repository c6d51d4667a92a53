"""A folder of wheels for building watcher's image without PyPI, served to ``docker build`` over HTTP.

``docker build`` runs its steps in containers that cannot see this machine's PyPI mirror (a local
folder) and, here, have no network but the host's loopback when built with ``network_mode="host"``.
So the wheels are made on the host with its own pip (``pip wheel``: watcher's dependencies and the
build requirements of pyproject.toml, at the versions installed in the environment running the
tests, so the image holds what was tested and pip's resolver has nothing to search for), cached as
``$WATCHER_HOME/wheelhouse/<hash of the requirements and versions>/``, and served by
``serve(folder)`` on 127.0.0.1; the Dockerfile's build stage reads them with ``PIP_NO_INDEX=1
PIP_FIND_LINKS=http://127.0.0.1:<port>/`` (pip's own settings, passed as build arguments). The
Dockerfile itself knows nothing of it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

from tests.support.process import REPO
from watcher.local import service


def requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """What the image's build stage installs: the runtime dependencies and the build backend."""
    document = tomllib.loads(pyproject.read_text())
    return [*document["project"]["dependencies"], *document["build-system"]["requires"]]


def installed_versions() -> str:
    """``pip freeze`` of this environment (watcher itself, installed editable, left out): constraints."""
    command = [sys.executable, "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout


def wheelhouse(log: bool = True) -> Path:
    """The cached folder of wheels for ``requirements()``, made with ``pip wheel`` when absent."""
    wanted, pinned = requirements(), installed_versions()
    key = hashlib.sha256(json.dumps([sys.version_info[:2], sorted(wanted), pinned]).encode()).hexdigest()[:16]
    root = service.home() / "wheelhouse"
    target = root / key
    if (target / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with service.locked(root / ".lock"):
        if (target / ".complete").exists():
            return target
        started = time.monotonic()
        partial = root / f"{key}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        constraints = root / f"{key}.constraints.txt"
        constraints.write_text(pinned)
        command = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--wheel-dir"]
        command += [str(partial), "--constraint", str(constraints)]
        result = subprocess.run([*command, *wanted], capture_output=True, text=True, timeout=900)
        constraints.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"pip wheel failed:\n{result.stderr[-3000:]}")
        (partial / ".complete").write_text("\n".join(wanted) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        for stale in root.iterdir():  # wheelhouses of earlier requirements or versions
            if stale.is_dir() and stale != target:
                shutil.rmtree(stale, ignore_errors=True)
        if log:
            count = len(list(target.glob("*.whl")))
            print(f"wheelhouse {target}: {count} wheels in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return target


# The URL is a build argument, and Docker's classic builder misses its cache at every step that sees a
# build argument whose value changed: the same port every time, unless it is taken.
PREFERRED_PORT = 47391


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (a directory listing, which pip reads as find-links); yields
    the URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", PREFERRED_PORT), handler)
    except OSError:  # taken (another build at the same time): any port, at the cost of the cache
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="wheelhouse", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None
