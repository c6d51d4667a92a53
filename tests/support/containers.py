"""Helpers for the container handler's integration tests: routes, leftovers, S3 reads."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.fixtures import FIXTURES, s3_event
from tests.support.images import busybox_image, docker_client
from tests.support.process import WatcherProcess

RUNTIMES = ("docker", "process")


@dataclass
class Jobs:
    """What the ``jobs`` fixture gives a test: the runtime under test, its work folder, a bucket."""

    runtime: str
    work_dir: Path
    bucket: str


def unit_lines(worker: WatcherProcess, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    """The worker's first ``count`` unit summary lines (its whole output when they never come)."""
    try:
        return worker.wait_for_units(count, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the worker wrote:\n{worker.output()[-6000:]}") from None


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
    """Work areas (folders) and their lock files: a stopped worker leaves neither."""
    return sorted(work_dir.glob("area-*")) if work_dir.exists() else []


def area_folders(work_dir: Path) -> list[Path]:
    return [path for path in areas_in(work_dir) if path.is_dir()]


def job_folders(work_dir: Path) -> list[Path]:
    """Job folders inside the work areas: none may outlive its unit, while the worker runs."""
    return sorted(job for area in area_folders(work_dir) for job in area.iterdir())


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


def scripts_running_in(work_dir: Path) -> list[int]:
    """Host processes of jobs whose work areas live in ``work_dir`` (by the TMP_OUTPUT_DIR they got)."""
    marker = f"TMP_OUTPUT_DIR={work_dir}/".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(v.startswith(marker) for v in (proc / "environ").read_bytes().split(b"\0")):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def jobs_running(runtime: str, work_dir: Path) -> bool:
    """Is a job of a worker using ``work_dir`` running now: a container, or a host process?"""
    if runtime == "docker":
        return any(c.status == "running" for c in containers_of(work_dir))
    return bool(scripts_running_in(work_dir))


def land(s3: Any, queues: Any, bucket: str, key: str) -> str:
    """An object lands and its S3 notification reaches the queue (sent as S3 writes it, without
    wiring the bucket). Returns the message id."""
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    return str(queues.send(s3_event(bucket, key)))


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def read(s3: Any, bucket: str, key: str) -> str:
    return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())


def checksum_outputs(s3: Any, bucket: str, content: bytes) -> str:
    """Assert what the checksum fixture script (tests/fixtures/scripts) leaves under ``results/`` for
    ``in put/file 1.txt`` holding ``content``, whatever the runtime; the job's request id."""
    found = keys(s3, bucket, "results/")
    request_id = found[0].split("/")[1]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    folder = f"results/{request_id}"
    assert found == [
        f"{folder}/.watcher/log.txt",
        f"{folder}/file 1.txt.sha256",
        f"{folder}/stats/contract.txt",
        f"{folder}/stats/event.json",
        f"{folder}/stats/greeting.txt",
        f"{folder}/stats/lines.txt",
        f"{folder}/stats/request_id.txt",
    ]
    assert read(s3, bucket, f"{folder}/file 1.txt.sha256").strip() == hashlib.sha256(content).hexdigest()
    assert read(s3, bucket, f"{folder}/stats/lines.txt").strip() == "3"
    return request_id


def exit_code_outcomes(worker: WatcherProcess, dead_letters: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Assert the exit-code routes' story, whatever the runtime: route ``strict`` (exit 3, listed in
    ``permanent_exit_codes``) tried once and dead-lettered by the worker with its reason, ``flaky``
    (exit 1) retried until the queue's redrive; the dead letters by object key."""
    strict = [line for line in worker.units() if line["route"] == "strict"]
    flaky = [line for line in worker.units() if line["route"] == "flaky"]
    assert [(line["outcome"], line["exit_code"]) for line in strict] == [("permanent", 3)]  # tried once
    assert [(line["outcome"], line["exit_code"]) for line in flaky] == [("retry", 1), ("retry", 1)]
    by_key = {json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"]: m for m in dead_letters}
    assert by_key["strict/bad.csv"]["MessageAttributes"]["watcher.error"]["StringValue"] == (
        "route strict: script exited with code 3 (listed in permanent_exit_codes); "
        "output ends with: 'rejecting strict/bad.csv\\n'"
    )
    return by_key
