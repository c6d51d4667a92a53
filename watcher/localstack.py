"""``watcher local up|down|status``: an embedded LocalStack on 127.0.0.1:4566 (``WATCHER_LOCALSTACK_PORT``) for
development, demos and tests. LocalStack runs natively from PyPI (no Docker) in a virtualenv of its own, because
its pins clash with ours; ``up`` creates that virtualenv the first time. If something already answers on the
port, it is used as it is.

It is started able to run Lambda functions on the local Docker engine (LocalStack's only executor), offline:

* the Python 3.11 fix: LocalStack 4.13 evaluates ``threading.Lock | None``, which fails below Python 3.13 in
  every feature that installs a package on first use (Lambda, DynamoDB); a ``sitecustomize.py`` on the
  LocalStack process's own ``PYTHONPATH`` makes ``threading.Lock`` a class (nothing else sees it);
* ``OVERRIDE_IN_DOCKER=0`` with a private ``FILESYSTEM_ROOT``: this machine has ``/.dockerenv``, and LocalStack
  would otherwise believe it runs in its own container (shared ``/var/lib/localstack``, wrong networking);
* runtime images from a loopback registry (``WATCHER_LAMBDA_REGISTRY``, default 127.0.0.1:5000), because
  LocalStack pulls a runtime image when a function is created and nothing can be pulled from the internet;
* an init named ``LAMBDA_INIT_VERSION``, which LocalStack looks for in ``lambda_init_path()`` instead of
  downloading it (the test bed puts a stand-in there: ``tests/support/lambda_init_standin.py``);
* Lambda containers reach LocalStack on the Docker bridge's address (172.17.0.1 here, ``HOSTNAME_FROM_LAMBDA``):
  it hands them ``AWS_ENDPOINT_URL=http://<bridge>:<port>``. (LocalStack 4.13 listens on all interfaces
  whatever ``GATEWAY_LISTEN`` names, so it answers there; it did before these settings too.)
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

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
# Where the Lambda runtime images are pulled from (read when LocalStack starts), and their names there.
LAMBDA_REGISTRY = os.environ.get("WATCHER_LAMBDA_REGISTRY") or "127.0.0.1:5000"
LAMBDA_IMAGES = {"python3.11": "watcher/lambda-python:3.11"}
LAMBDA_INIT_VERSION = "watcher-init-stand-in"
_HOME = Path(os.environ.get("WATCHER_HOME", Path.home() / ".cache" / "watcher"))

# Only the LocalStack process imports this (its PYTHONPATH): see the module docstring.
_LOCK_FIX = '''"""Written by watcher (watcher/localstack.py) for the LocalStack process only. LocalStack 4.13 evaluates
`Lock | None` (localstack/packages/api.py); below Python 3.13 threading.Lock is a function, so every feature that
installs a package on first use fails. Make threading.Lock a class whose instances are the real locks."""
import sys
import threading

if sys.version_info < (3, 13) and not isinstance(threading.Lock, type):
    _allocate = threading.Lock
    _LOCK_TYPE = type(_allocate())

    class _LockMeta(type):
        def __instancecheck__(cls, instance):
            return isinstance(instance, _LOCK_TYPE)

    class Lock(metaclass=_LockMeta):
        def __new__(cls, *args, **kwargs):
            return _allocate(*args, **kwargs)

    threading.Lock = Lock
'''


def venv_dir() -> Path:
    return Path(os.environ.get("WATCHER_LOCALSTACK_VENV", _HOME / "localstack-venv"))


def state_dir() -> Path:
    return Path(os.environ.get("WATCHER_LOCALSTACK_STATE", _HOME / "localstack"))


def filesystem_root(state: Path | None = None) -> Path:
    """LocalStack's ``FILESYSTEM_ROOT``: its libraries (``var/lib/localstack/lib``), temporary files, state."""
    return (state or state_dir()) / "filesystem"


def lambda_init_path(state: Path | None = None) -> Path:
    """Where LocalStack looks for the init it copies into every Lambda container (``/var/rapid/init``)."""
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    libs = filesystem_root(state) / "var" / "lib" / "localstack" / "lib"
    return libs / "lambda-runtime" / LAMBDA_INIT_VERSION / (arch or platform.machine()) / "var" / "rapid" / "init"


def lambda_image_mapping(registry: str | None = None) -> dict[str, str]:
    return {runtime: f"{registry or LAMBDA_REGISTRY}/{name}" for runtime, name in LAMBDA_IMAGES.items()}


def docker_bridge_address() -> str | None:
    """The default Docker bridge's address on this host (how containers reach it; 172.17.0.1 by default), or
    None without a local engine. Docker 20.10 does not always list the gateway: then the bridge interface's."""
    try:
        import docker

        network = docker.from_env(timeout=5).api.inspect_network("bridge")
    except Exception:  # no engine: LocalStack then runs without Lambda
        return None
    configs = (network.get("IPAM") or {}).get("Config") or [{}]
    gateway = configs[0].get("Gateway") or _interface_address(
        (network.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    )
    if not gateway:
        return None
    try:
        with socket.socket() as probe:
            probe.bind((gateway, 0))  # a remote engine's bridge is not ours to listen on
    except OSError:
        return None
    return str(gateway)


def _interface_address(name: str) -> str | None:
    import fcntl
    import struct

    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            answer = fcntl.ioctl(sock.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(answer[20:24])


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
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing LocalStack into {venv_dir()} (first time only) ...", file=out, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv_dir())], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    return python


def _lock_fix(state: Path) -> Path:
    folder = state / "python-fix"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_LOCK_FIX)
    return folder


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
    python_path = os.pathsep.join(filter(None, [str(_lock_fix(state)), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, **settings, "PYTHONPATH": python_path}
    with open(state / "localstack.log", "ab") as log:
        process = subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            env=env,
            cwd=state,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (state / "localstack.pid").write_text(str(process.pid))
    (state / "localstack.json").write_text(json.dumps({"pid": process.pid, "port": port, "environment": settings}))
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        if process.poll() is not None:
            raise RuntimeError(f"LocalStack exited with {process.returncode}; see {state / 'localstack.log'}")
        if _ready(health(port=port)):
            took = time.monotonic() - started
            print(f"LocalStack ready on {endpoint} (pid {process.pid}, {took:.1f}s)", file=out)
            return True
        time.sleep(0.2)
    raise RuntimeError(f"LocalStack not ready after {timeout:.0f}s; see {state / 'localstack.log'}")


def down(out: Any = sys.stderr, *, state: Path | None = None) -> bool:
    state = state or state_dir()
    pid_file = state / "localstack.pid"
    if not pid_file.exists():
        print("no LocalStack started by watcher is running", file=out)
        return False
    pid = int(pid_file.read_text())
    try:
        # LocalStack alone: on its way out it stops its Lambda containers with `docker stop` children of its own,
        # which a SIGTERM to the whole group would kill first (leaving the containers running).
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when we are its parent (tests)
            os.kill(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)
    (state / "localstack.json").unlink(missing_ok=True)
    print(f"LocalStack (pid {pid}) stopped", file=out)
    return True


def status() -> tuple[bool, str]:
    current = health()
    if current is None:
        return False, f"LocalStack is not answering on {ENDPOINT}"
    services = {k: v for k, v in current.get("services", {}).items() if v != "disabled"}
    return _ready(current), json.dumps({"endpoint": ENDPOINT, "version": current.get("version"), "services": services})
