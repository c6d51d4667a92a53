"""Options of the ``container`` handler, validated when the configuration is loaded.

Every mistake (an unknown field, a script that does not exist, an output that is not an S3 URI, a
memory size Docker would refuse) is reported at start with its field, not on the first event. The
options a runtime alone takes are checked by that runtime (the handler asks it).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.config.fields import check_unknown
from watcher.handlers.container.contract import CONTRACT_VARIABLES

FIELDS = (
    "image",
    "script",
    "command",
    "output",
    "request_id_folder",
    "environment",
    "memory",
    "cpus",
    "pids_limit",
    "timeout_seconds",
    "network",
    "user",
    "pull",
    "permanent_exit_codes",
    "runtime",
    "registry_auth",
    "work_dir",
    "log_tail_chars",
    "upload_last",
)
OUTPUT_FIELDS = ("uri", "prefix", "suffix")
PULL_POLICIES = ("if-not-present", "always", "never")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$", re.IGNORECASE)  # as Docker reads it
_MEMORY_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_MIN_MEMORY = 6 << 20  # Docker refuses less than 6 MB
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class OutputTarget:
    """Where a job's output files go: ``s3://bucket/key_prefix``, optionally only the files whose
    path relative to ``output/`` starts with ``prefix`` and ends with ``suffix``."""

    bucket: str
    key_prefix: str  # without a trailing slash; "" is the bucket's root
    prefix: str = ""
    suffix: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key_prefix}".rstrip("/") if self.key_prefix else f"s3://{self.bucket}"

    def wants(self, relative_path: str) -> bool:
        return relative_path.startswith(self.prefix) and relative_path.endswith(self.suffix)

    def folder(self, request_id: str, request_id_folder: bool) -> str:
        """The key prefix a job's files go under, ending in ``/`` unless it is the bucket's root."""
        parts = [p for p in (self.key_prefix, request_id if request_id_folder else "") if p]
        return "".join(f"{p}/" for p in parts)


@dataclass(frozen=True, slots=True)
class RegistryAuth:
    """Credentials for pulling the image: plain ones, or ``ecr`` (a token from the AWS SDK)."""

    ecr: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ContainerOptions:
    script: str  # the shell script's text (from ``script``, or ``command`` as a one-line script)
    image: str | None = None
    outputs: tuple[OutputTarget, ...] = ()
    request_id_folder: bool = True
    environment: Mapping[str, str] = field(default_factory=dict)
    memory: int | None = None  # bytes
    cpus: float | None = None
    pids_limit: int = 256
    timeout_seconds: float | None = None
    network: str = "none"
    user: str | None = None  # None: the worker's own uid:gid
    pull: str = "if-not-present"
    permanent_exit_codes: frozenset[int] = frozenset()
    runtime: str = "docker"
    registry_auth: RegistryAuth | None = None
    work_dir: Path = field(default_factory=lambda: default_work_dir())
    log_tail_chars: int = 2000
    # File names (the last part of a path) uploaded only once every other output is in S3: a marker
    # such as Spark's ``_SUCCESS`` must not trigger its consumer before the files it vouches for.
    upload_last: frozenset[str] = frozenset({"_SUCCESS"})
    # The options only the chosen runtime takes (its ``option_fields``), as written; it checked them.
    runtime_options: Mapping[str, Any] = field(default_factory=dict)


def default_work_dir() -> Path:
    """``$WATCHER_WORK_DIR``, else a folder of this user's under the temporary directory (a
    per-user name: another user must not be able to create it first)."""
    configured = os.environ.get("WATCHER_WORK_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"watcher-jobs-{os.geteuid()}"


def parse_s3_uri(value: Any) -> tuple[str, str] | None:
    """``s3://bucket/some/prefix/`` -> ("bucket", "some/prefix"); None when not an S3 URI."""
    if not isinstance(value, str) or not value.startswith("s3://"):
        return None
    bucket, _, key_prefix = value[len("s3://") :].partition("/")
    if not bucket or "/" in bucket:
        return None
    return bucket, key_prefix.strip("/")


def parse_memory(value: Any) -> int | None:
    """``512m`` / ``512MiB`` / ``1.5g`` / ``1048576`` -> bytes (units of 1024, as Docker counts);
    None when not a size Docker accepts."""
    if isinstance(value, bool):
        return None
    match = _MEMORY.match(str(value).strip())
    if not match:
        return None
    size = int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()])
    return size if size >= _MIN_MEMORY else None


def _outputs(value: Any, problems: list[str]) -> tuple[OutputTarget, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    targets = []
    for index, item in enumerate(items):
        where = f".output[{index}]" if isinstance(value, list) else ".output"
        if isinstance(item, str):
            item = {"uri": item}
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an S3 URI or a mapping {{uri, prefix, suffix}}")
            continue
        check_unknown(item, OUTPUT_FIELDS, where, problems)
        parsed = parse_s3_uri(item.get("uri"))
        if parsed is None:
            problems.append(f"{where}.uri: must be an S3 URI such as s3://bucket/outputs/ (got {item.get('uri')!r})")
            continue
        filters = {}
        for name in ("prefix", "suffix"):
            text = item.get(name, "")
            if not isinstance(text, str):
                problems.append(f"{where}.{name}: must be a string")
                text = ""
            filters[name] = text
        targets.append(OutputTarget(parsed[0], parsed[1], filters["prefix"].lstrip("/"), filters["suffix"]))
    return tuple(targets)


def _environment(value: Any, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(".environment: must be a mapping of variable names to values")
        return {}
    environment = {}
    for name, item in value.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            problems.append(f".environment.{name}: not a valid variable name")
        elif name in CONTRACT_VARIABLES:
            problems.append(f".environment.{name}: set by watcher for every job; choose another name")
        elif isinstance(item, dict | list) or item is None:
            problems.append(f".environment.{name}: must be a string, number or boolean")
        elif "\0" in str(item):
            problems.append(f".environment.{name}: cannot contain a NUL character")
        else:
            environment[name] = str(item).lower() if isinstance(item, bool) else str(item)
    return environment


def _script(options: Mapping[str, Any], problems: list[str]) -> str:
    script, command = options.get("script"), options.get("command")
    if script is not None and command is not None:
        problems.append(".script: give either script (a file) or command, not both")
        return ""
    if command is not None:
        if not isinstance(command, str) or not command.strip():
            problems.append(".command: must be a non-empty shell command")
            return ""
        return command
    if script is None:
        problems.append(".script: required (a shell script file), or give command")
        return ""
    path = Path(str(script)).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f".script: cannot read {str(script)!r}: {getattr(exc, 'strerror', None) or exc}")
        return ""


def _registry_auth(value: Any, problems: list[str]) -> RegistryAuth | None:
    if value is None:
        return None
    if value == "ecr":
        return RegistryAuth(ecr=True)
    if isinstance(value, dict) and set(value) <= {"username", "password"}:
        username, password = value.get("username"), value.get("password")
        if isinstance(username, str) and username and isinstance(password, str) and password:
            return RegistryAuth(username=username, password=password)
    problems.append('.registry_auth: must be "ecr" or {username, password} (e.g. password: ${secretsmanager:NAME})')
    return None


def parse_options(
    options: Mapping[str, Any],
    *,
    runtimes: tuple[str, ...],
    runtime_fields: tuple[str, ...] = (),
    runtime_problems: tuple[str, ...] = (),
) -> tuple[ContainerOptions | None, list[str]]:
    """The options as ``ContainerOptions``, or None with every problem (``.field: message``).
    ``runtimes`` are the known runtime names; the chosen runtime adds ``runtime_fields`` and has
    found ``runtime_problems`` with its own options (reported right after the runtime's name)."""
    problems: list[str] = []
    check_unknown(options, (*FIELDS, *runtime_fields), ".", problems)
    runtime = options.get("runtime", "docker")
    if runtime not in runtimes:
        problems.append(f".runtime: must be one of {', '.join(runtimes)}")
        runtime = "docker"
    problems.extend(runtime_problems)
    image = options.get("image")
    script = _script(options, problems)
    outputs = _outputs(options.get("output"), problems)
    memory = None
    if options.get("memory") is not None:
        memory = parse_memory(options["memory"])
        if memory is None:
            problems.append(".memory: must be a size of at least 6m, such as 512m or 2g")
    cpus = options.get("cpus")
    if cpus is not None and (isinstance(cpus, bool) or not isinstance(cpus, int | float) or cpus <= 0):
        problems.append(".cpus: must be a number above 0, such as 0.5 or 2")
        cpus = None
    pids_limit = options.get("pids_limit", 256)
    if isinstance(pids_limit, bool) or not isinstance(pids_limit, int) or pids_limit < 8:
        problems.append(".pids_limit: must be a whole number of at least 8")
        pids_limit = 256
    timeout = options.get("timeout_seconds")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        problems.append(".timeout_seconds: must be a number of seconds above 0")
        timeout = None
    network = options.get("network", "none")
    if not isinstance(network, str) or not network or network.startswith("container:"):
        problems.append('.network: must be a Docker network name ("none", "bridge", or one of yours)')
        network = "none"
    user = options.get("user")
    if user is not None and (isinstance(user, bool) or not str(user).strip()):
        problems.append('.user: must be a user such as "1000:1000" or "nobody"')
        user = None
    pull = options.get("pull", "if-not-present")
    if pull not in PULL_POLICIES:
        problems.append(f".pull: must be one of {', '.join(PULL_POLICIES)}")
        pull = "if-not-present"
    codes = options.get("permanent_exit_codes", [])
    if not isinstance(codes, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 255 for c in codes
    ):
        problems.append(".permanent_exit_codes: must be a list of exit codes from 1 to 255")
        codes = []
    request_id_folder = options.get("request_id_folder", True)
    if not isinstance(request_id_folder, bool):
        problems.append(".request_id_folder: must be true or false")
        request_id_folder = True
    tail = options.get("log_tail_chars", 2000)
    if isinstance(tail, bool) or not isinstance(tail, int) or not 0 <= tail <= 100_000:
        problems.append(".log_tail_chars: must be a whole number from 0 to 100000")
        tail = 2000
    last = options.get("upload_last", ["_SUCCESS"])
    if not isinstance(last, list) or not all(isinstance(n, str) and n and "/" not in n for n in last):
        problems.append(".upload_last: must be a list of file names such as [_SUCCESS] (no folders)")
        last = ["_SUCCESS"]
    environment = _environment(options.get("environment"), problems)
    registry_auth = _registry_auth(options.get("registry_auth"), problems)
    work_dir = options.get("work_dir")
    if work_dir is not None and (not isinstance(work_dir, str) or not work_dir):
        problems.append(".work_dir: must be a directory path")
        work_dir = None
    if problems:
        return None, problems
    return (
        ContainerOptions(
            script=script,
            image=str(image).strip() if isinstance(image, str) else None,
            outputs=outputs,
            request_id_folder=request_id_folder,
            environment=environment,
            memory=memory,
            cpus=float(cpus) if cpus is not None else None,
            pids_limit=pids_limit,
            timeout_seconds=float(timeout) if timeout is not None else None,
            network=network,
            user=str(user).strip() if user is not None else None,
            pull=str(pull),
            permanent_exit_codes=frozenset(codes),
            runtime=str(runtime),
            registry_auth=registry_auth,
            work_dir=Path(work_dir).expanduser().resolve() if work_dir else default_work_dir().resolve(),
            log_tail_chars=tail,
            upload_last=frozenset(last),
            runtime_options={name: options[name] for name in runtime_fields if name in options},
        ),
        [],
    )
