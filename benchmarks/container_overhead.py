"""Container-job overhead benchmark: what the ``container`` handler adds around a user's script,
against a bare ``docker run`` of the same image and script on a local file.

An on-demand benchmark, not a test. Needs LocalStack (``watcher local up``) and a Docker engine
(``scripts/ensure-docker.sh``)::

    python benchmarks/container_overhead.py                  # 1 MB and 100 MB objects, 5 jobs each
    python benchmarks/container_overhead.py --sizes-mb 1 10 100 --jobs 3

For each size, in one run:

(a) ``watcher run`` (a subprocess, ``max_in_flight: 1`` so jobs do not compete) with one
    ``container`` route on the locally built busybox image; the object is uploaded to LocalStack
    and its S3 notification sent ``--jobs`` times (distinct keys). Per job, the summary line gives
    the unit's wall time (``duration_ms``: work directory, download, container create / start /
    wait / logs / remove, output upload, clean-up) and the script's own time (``script_ms``, Docker's
    StartedAt -> FinishedAt). Overhead = duration - script.
(b) ``docker run --rm`` of the same image and script, the same file bind-mounted read-only from a
    local folder, timed around the command; the script's own time comes from ``docker inspect`` of
    the same run (so (b) runs without ``--rm`` and the ``docker rm`` is timed and added, which is
    what ``--rm`` costs). Overhead = wall - script.

The script is ``sha256sum`` of the input, written to the output folder: the same in both. Reported:
median overheads, the ratio a/b per size, and (a)'s download and upload times. Results go to
benchmarks/results/container-<timestamp>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support, when run as a script

from benchmarks.throughput import REGION, check_endpoint  # noqa: E402
from tests.support.images import busybox_image  # noqa: E402
from tests.support.process import WatcherProcess  # noqa: E402
from watcher import __version__  # noqa: E402
from watcher.handlers.container.runtimes.docker import _script_seconds  # noqa: E402

SCRIPT = 'sha256sum "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/input.sha256"\n'
RESULTS_DIR = REPO / "benchmarks" / "results"


def s3_event(bucket: str, key: str, size: int, index: int) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-23T04:12:09.518Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": size, "eTag": uuid.uuid4().hex, "sequencer": f"{index:018X}"},
        },
    }
    return json.dumps({"Records": [record]})


def aws(endpoint: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def run_watcher(endpoint: str, image: str, size: int, jobs: int, workdir: Path) -> list[dict[str, Any]]:
    s3, sqs = aws(endpoint, "s3"), aws(endpoint, "sqs")
    name = f"watcher-bench-container-{uuid.uuid4().hex[:8]}"
    bucket = name
    s3.create_bucket(Bucket=bucket)
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})},
    )["QueueUrl"]
    payload = workdir / "payload.bin"
    payload.write_bytes(os.urandom(size))
    script = workdir / "job.sh"
    script.write_text(SCRIPT)
    config = {
        "aws": {"region": REGION, "endpoint_url": endpoint},
        "queue": {"url": queue, "wait_time_seconds": 1, "visibility_timeout": 120, "max_in_flight": 1},
        "logging": {"level": "info"},
        "routes": [
            {
                "name": "bench",
                "prefix": "in/",
                "handler": {
                    "type": "container",
                    "image": image,
                    "script": str(script),
                    "output": f"s3://{bucket}/out/",
                    "work_dir": str(workdir / "work"),
                },
            }
        ],
    }
    worker = WatcherProcess(config, workdir)
    try:
        worker.wait_started(60)
        for index in range(jobs):
            key = f"in/object-{index}.bin"
            s3.upload_file(str(payload), bucket, key)
            sqs.send_message(QueueUrl=queue, MessageBody=s3_event(bucket, key, size, index))
        lines = worker.wait_for_units(jobs, timeout=600)
    finally:
        worker.stop()
        for url in (queue, dlq):
            sqs.delete_queue(QueueUrl=url)
    failed = [line for line in lines if line.get("outcome") != "ok"]
    if failed:
        raise SystemExit(f"(a) a job failed: {failed[0]}")
    return [
        {
            "wall_ms": line["duration_ms"],
            "script_ms": line["script_ms"],
            "overhead_ms": line["duration_ms"] - line["script_ms"],
            "download_ms": line["download_ms"],
            "upload_ms": line.get("upload_ms"),
        }
        for line in lines
    ]


def run_bare_docker(image: str, size: int, jobs: int, workdir: Path) -> list[dict[str, Any]]:
    folder = workdir / "bare"
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "payload.bin").write_bytes(os.urandom(size))
    (folder / "job.sh").write_text(SCRIPT)
    runs = []
    for index in range(jobs):
        output = folder / f"output-{index}"
        output.mkdir()
        name = f"watcher-bench-bare-{uuid.uuid4().hex[:8]}"
        command = [
            "docker", "run", "--name", name, "--network", "none",
            "-e", "INPUT_FILE_PATH=/in/payload.bin", "-e", "TMP_OUTPUT_DIR=/out",
            "-v", f"{folder / 'input'}:/in:ro", "-v", f"{output}:/out", "-v", f"{folder / 'job.sh'}:/job.sh:ro",
            image, "/bin/sh", "/job.sh",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        wall = time.perf_counter() - started
        state = json.loads(subprocess.run(["docker", "inspect", name], check=True, capture_output=True).stdout)[0]
        removing = time.perf_counter()
        subprocess.run(["docker", "rm", name], check=True, capture_output=True)
        wall += time.perf_counter() - removing
        script_ms = (_script_seconds(state["State"]) or 0.0) * 1000
        runs.append({"wall_ms": wall * 1000, "script_ms": script_ms, "overhead_ms": wall * 1000 - script_ms})
    return runs


def median(runs: list[dict[str, Any]], field: str) -> float:
    values = [run[field] for run in runs if run.get(field) is not None]
    return round(statistics.median(values), 1) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--jobs", type=int, default=5, help="jobs per size and phase (medians are reported)")
    parser.add_argument("--endpoint", default="http://127.0.0.1:4566")
    args = parser.parse_args()
    check_endpoint(args.endpoint)
    image = busybox_image()
    results: dict[str, Any] = {
        "version": __version__,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "jobs": args.jobs,
        "image": image,
        "sizes": {},
    }
    print(f"{'size':>7} | {'(a) watcher overhead ms':>23} | {'(b) docker run overhead ms':>26} | {'a/b':>5} | "
          f"{'script ms a/b':>13} | {'download ms':>11} | {'upload ms':>9}")  # fmt: skip
    for size_mb in args.sizes_mb:
        size = size_mb << 20
        with tempfile.TemporaryDirectory(prefix="watcher-bench-") as tmp:
            watcher_runs = run_watcher(args.endpoint, image, size, args.jobs, Path(tmp))
        with tempfile.TemporaryDirectory(prefix="watcher-bench-") as tmp:
            bare_runs = run_bare_docker(image, size, args.jobs, Path(tmp))
        a, b = median(watcher_runs, "overhead_ms"), median(bare_runs, "overhead_ms")
        results["sizes"][f"{size_mb}MB"] = {"watcher": watcher_runs, "bare_docker": bare_runs, "ratio": a / b}
        print(
            f"{size_mb:>5}MB | {a:>23.1f} | {b:>26.1f} | {a / b:>5.2f} | "
            f"{median(watcher_runs, 'script_ms'):>6.0f}/{median(bare_runs, 'script_ms'):<6.0f} | "
            f"{median(watcher_runs, 'download_ms'):>11.1f} | {median(watcher_runs, 'upload_ms'):>9.1f}"
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"container-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
