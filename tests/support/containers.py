"""Helpers for the container handler's integration tests: routes, leftovers, S3 reads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support.fixtures import FIXTURES
from tests.support.images import busybox_image, docker_client

RUNTIMES = ("docker", "process")


def script(name: str) -> str:
    return str(FIXTURES / "scripts" / name)


def container_route(name: str, runtime: str, work_dir: Path, **options: Any) -> dict[str, Any]:
    """A route with a container handler; route-level fields (bucket, prefix, suffix) go in ``route``."""
    route = options.pop("route", {})
    handler: dict[str, Any] = {"type": "container", "runtime": runtime, "work_dir": str(work_dir), **options}
    if runtime == "docker":
        handler.setdefault("image", busybox_image())
    return {"name": name, "handler": handler, **route}


def containers_of(work_dir: Path) -> list[Any]:
    """Every container (running or not) made by a worker whose work areas live in ``work_dir``."""
    client = docker_client()
    found = client.containers.list(all=True, filters={"label": "io.watcher.managed=true"})
    return [c for c in found if c.labels.get("io.watcher.area", "").startswith(f"{work_dir}/")]


def areas_in(work_dir: Path) -> list[Path]:
    return sorted(work_dir.glob("area-*")) if work_dir.exists() else []


def processes_with(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (for scripts that must have been killed)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command and int(proc.name) != os.getpid():
            found.append(int(proc.name))
    return found


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def read(s3: Any, bucket: str, key: str) -> str:
    return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
