"""What LocalStack needs to run AWS Lambda functions on the local Docker engine, offline (its only
executor is Docker): a fix for LocalStack 4.13 on Python 3.11, runtime images from a loopback
registry, an init it finds instead of downloading, and the Docker bridge's address.

* LocalStack 4.13 evaluates ``threading.Lock | None``, which fails below Python 3.13 in every feature
  that installs a package on first use (Lambda, DynamoDB): a ``sitecustomize.py`` on the LocalStack
  process's own ``PYTHONPATH`` makes ``threading.Lock`` a class (nothing else sees it).
* Runtime images come from a loopback registry (``WATCHER_LAMBDA_REGISTRY``, default 127.0.0.1:5000):
  LocalStack pulls one when a function is created, and nothing can be pulled from the internet.
* The init named ``LAMBDA_INIT_VERSION`` is looked for in ``lambda_init_path()`` instead of being
  downloaded (the test bed puts a stand-in there: ``tests/support/lambda_init_standin.py``).
* Lambda containers reach LocalStack on the Docker bridge's address (172.17.0.1 here,
  ``HOSTNAME_FROM_LAMBDA``): it hands them ``AWS_ENDPOINT_URL=http://<bridge>:<port>``.
"""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

# Where the Lambda runtime images are pulled from (read when LocalStack starts), and their names there.
LAMBDA_REGISTRY = os.environ.get("WATCHER_LAMBDA_REGISTRY") or "127.0.0.1:5000"
LAMBDA_IMAGES = {"python3.11": "watcher/lambda-python:3.11"}
LAMBDA_INIT_VERSION = "watcher-init-stand-in"

# Only the LocalStack process imports this (its PYTHONPATH): see the module docstring.
_LOCK_FIX = '''"""Written by watcher (watcher/local/localstack_lambda.py) for the LocalStack process only.
LocalStack 4.13 evaluates `Lock | None` (localstack/packages/api.py); below Python 3.13 threading.Lock is a
function, so every feature that installs a package on first use fails. Make threading.Lock a class whose
instances are the real locks."""
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


def filesystem_root(state: Path) -> Path:
    """LocalStack's ``FILESYSTEM_ROOT``: its libraries (``var/lib/localstack/lib``), temporary files, state."""
    return state / "filesystem"


def lambda_init_path(state: Path) -> Path:
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


def lock_fix(state: Path) -> Path:
    folder = state / "python-fix"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_LOCK_FIX)
    return folder
