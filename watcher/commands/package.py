"""``watcher package lambda -c FILE -o watcher-lambda.zip``: a deployment package for AWS Lambda.

The zip holds, at its root: the ``watcher`` package (handler ``watcher.lambda_.handler.handler``),
the configuration as ``watcher.yaml`` (where the function looks by default), the files given with
``--add`` (the modules of ``python`` routes), and the dependencies the configuration needs, as
manylinux wheels for CPython 3.11 on the chosen architecture (``pip install --platform``), at the
versions installed here. boto3 comes with the Lambda runtime unless ``--include-boto3``. Modules are
compiled to ``.pyc`` (unchecked-hash: the runtime cannot write caches to the read-only code folder,
and would compile every module it imports at each cold start).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.metadata
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import watcher
from watcher.app import load_config
from watcher.config.loader import read_document
from watcher.errors import ConfigError
from watcher.lambda_.rules import document_problems, lambda_problems
from watcher.lambda_.settings import PACKAGED_CONFIG

PYTHON = "3.11"
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}  # Lambda's name -> the wheel platform's
CORE = ("structlog", "prometheus-client", "PyYAML", "orjson")  # what every function imports
BY_HANDLER = {"workflow": ("aiohttp", "tenacity")}  # what a handler type adds
BOTO3 = ("boto3",)  # in the Lambda runtime already
_UNUSED = ("__pycache__", "*.pyc", "*.pyo")
_STAMP = (1980, 1, 1, 0, 0, 0)  # every entry's date: the same inputs make the same zip
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks the zip


@dataclass
class Package:
    path: Path
    architecture: str
    requirements: list[str]
    size: int = 0
    unpacked: int = 0
    files: int = 0
    folders: dict[str, int] = field(default_factory=dict)  # top-level entry -> bytes unpacked
    warnings: list[str] = field(default_factory=list)


def cmd_package(args: argparse.Namespace) -> int:
    config_path = Path(args.config)
    added = [Path(p) for p in args.add]
    handlers = _handlers(config_path, check=not args.no_check, added=added)
    requirements = requirements_for(
        {kind for kind, _ in handlers}, include_boto3=args.include_boto3, extra=args.requirement
    )
    package = build(
        config_path,
        Path(args.output),
        architecture=args.arch,
        requirements=requirements,
        add=added,
        compile_modules=not args.no_compile,
    )
    tops = {name.removesuffix(".py") for name in package.folders}
    for kind, function in handlers:
        module = function.partition(":")[0]
        if kind == "python" and module.split(".")[0] not in tops:
            package.warnings.append(f"{function}: module {module} is not in the package (add its code with --add)")
    _report(package, config_path, args.include_boto3)
    return 0


def _handlers(config_path: Path, *, check: bool, added: Sequence[Path] = ()) -> list[tuple[str, str]]:
    """``(handler type, function)`` of every route (``function`` is a python route's, else ""),
    the configuration validated as ``watcher check`` does (Lambda rules included) unless ``check``
    is off (it is validated at cold start anyway). Secrets Manager and SSM references are not read
    (they are the function's to read, with its role); the code ``added`` to the zip's root is
    importable, as it will be in the function, while the python routes' functions are checked."""
    if check:
        problems = document_problems(read_document(config_path))  # before the handlers' checks, as the function
        if problems:
            raise ConfigError(problems, str(config_path))
        roots = [str(path.resolve().parent) for path in added]
        sys.path[:0] = roots
        try:
            config = load_config(config_path, read_secret_stores=False)
        finally:
            del sys.path[: len(roots)]
        problems = lambda_problems(config)
        if problems:
            raise ConfigError(problems, str(config_path))
        return [(r.handler.type, str(r.handler.options.get("function", ""))) for r in config.routes]
    document = read_document(config_path)
    routes = document.get("routes") if isinstance(document, dict) else None
    specs = [r["handler"] for r in routes or [] if isinstance(r, dict) and isinstance(r.get("handler"), dict)]
    return [(str(spec.get("type")), str(spec.get("function", ""))) for spec in specs]


def requirements_for(handler_types: Iterable[str], *, include_boto3: bool, extra: Sequence[str] = ()) -> list[str]:
    """pip requirements: each of watcher's own at the version installed here (else its range)."""
    names = list(CORE)
    for handler_type in sorted(handler_types):
        names += [n for n in BY_HANDLER.get(handler_type, ()) if n not in names]
    if include_boto3:
        names += BOTO3
    return [_pinned(name) for name in names] + list(extra)


def _pinned(name: str) -> str:
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        declared = importlib.metadata.requires("watcher") or []
        canonical = _canonical(name)
        return next((r for r in declared if _canonical(re.split(r"[<>=!~; \[]", r, maxsplit=1)[0]) == canonical), name)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def platforms(architecture: str) -> list[str]:
    """The manylinux tags the python3.11 runtime (Amazon Linux 2, glibc 2.26) can load."""
    machine = ARCHITECTURES[architecture]
    oldest = 5 if machine == "x86_64" else 17
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(oldest, 27)]
    legacy = ["manylinux2014"] + (["manylinux2010", "manylinux1"] if machine == "x86_64" else [])
    return tags + [f"{name}_{machine}" for name in legacy]


def build(
    config_path: Path,
    output: Path,
    *,
    architecture: str,
    requirements: Sequence[str],
    add: Sequence[Path] = (),
    compile_modules: bool = True,
) -> Package:
    package = Package(output, architecture, list(requirements))
    with tempfile.TemporaryDirectory(prefix="watcher-package-") as work:
        root = Path(work) / "package"
        root.mkdir()
        _install(root, architecture, requirements)
        shutil.rmtree(root / "bin", ignore_errors=True)  # console scripts: nothing runs them
        shutil.copytree(Path(watcher.__file__).parent, root / "watcher", ignore=shutil.ignore_patterns(*_UNUSED))
        for path in add:
            target = root / path.name
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns(*_UNUSED), dirs_exist_ok=True)
            else:
                shutil.copyfile(path, target)
        shutil.copyfile(config_path, root / PACKAGED_CONFIG)
        if compile_modules:
            package.warnings += _compile(root)
        _write_zip(root, output, package)
    package.size = output.stat().st_size
    return package


def _install(root: Path, architecture: str, requirements: Sequence[str]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(root), "--no-compile"]
    command += [f"--platform={tag}" for tag in platforms(architecture)]
    command += ["--implementation", "cp", "--python-version", PYTHON, "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--no-warn-script-location", *requirements]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if done.returncode != 0:
        errors = "\n".join(line for line in done.stderr.splitlines() if "is ignored" not in line)
        raise SystemExit(f"watcher package: pip could not get the wheels for {architecture}:\n{errors[-3000:]}")


def _compile(root: Path) -> list[str]:
    """``.pyc`` next to every module, for this interpreter when it is the runtime's Python."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != PYTHON:
        return [f"modules not compiled: this is Python {sys.version.split()[0]}, the runtime is {PYTHON}"]
    compileall.compile_dir(
        str(root),
        ddir=LAMBDA_TASK_ROOT,  # the paths the modules will have: the same inputs make the same files
        quiet=2,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    return []


def _write_zip(root: Path, output: Path, package: Package) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = path.relative_to(root).as_posix()
            info = zipfile.ZipInfo(name, date_time=_STAMP)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16  # the runtime's user reads
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            archive.writestr(info, data)
            package.files += 1
            package.unpacked += len(data)
            top = name.split("/", 1)[0]
            package.folders[top] = package.folders.get(top, 0) + len(data)
    partial.replace(output)


def _report(package: Package, config_path: Path, include_boto3: bool) -> None:
    mb = 1024 * 1024
    print(
        f"wrote {package.path}: {package.size / mb:.1f} MiB zipped, {package.unpacked / mb:.1f} MiB unpacked, "
        f"{package.files} files (python{PYTHON}, {package.architecture})"
    )
    print(f"  handler: watcher.lambda_.handler.handler; configuration: {PACKAGED_CONFIG} (from {config_path})")
    print(f"  requirements: {' '.join(package.requirements)}")
    if not include_boto3:
        print("  boto3: the Lambda runtime's (--include-boto3 puts this version in the package)")
    largest = sorted(package.folders.items(), key=lambda item: -item[1])[:6]
    print("  largest: " + ", ".join(f"{name} {size / mb:.1f} MiB" for name, size in largest))
    for warning in package.warnings:
        print(f"  warning: {warning}")
