"""Backfill benchmark: how fast `watcher backfill` enqueues the notifications of existing objects, and
whether its memory depends on how many there are.

An on-demand benchmark, not a test. With a LocalStack running (``watcher local up``)::

    python benchmarks/backfill.py                      # 20,000 and 60,000 objects
    python benchmarks/backfill.py --objects 20000 100000

For each size N, a bucket ``watcher-bench-backfill-<N>`` holding N small objects is made once and
kept (making them is the slow part: later runs reuse it). A fresh queue (deleted at the end) receives
the backfill: ``python -m watcher backfill -c <config> s3://<bucket>/`` as a subprocess, one route
matching every object. Reported: objects listed and sent, wall time of the command (start-up
included), objects/s, and the command's peak RSS. The target is >= 2,000 objects/s enqueued; a peak
RSS that does not grow with N shows the listing is streamed. Results go to
benchmarks/results/backfill-<timestamp>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.throughput import REGION, Queues, check_endpoint, client_kwargs  # noqa: E402

RESULTS_DIR = REPO / "benchmarks" / "results"
TARGET = 2000.0


def ensure_bucket(endpoint: str, n: int) -> str:
    import boto3

    s3 = boto3.client("s3", **client_kwargs(endpoint, pool=32))
    bucket = f"watcher-bench-backfill-{n}"
    existing = 0
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        existing = sum(page.get("KeyCount", 0) for page in pages)
    except s3.exceptions.NoSuchBucket:
        s3.create_bucket(Bucket=bucket)
    if existing < n:
        print(f"putting {n - existing} objects into {bucket} (kept for later runs) ...", flush=True)
        with ThreadPoolExecutor(32) as pool:
            keys = (f"data/{i // 1000:04d}/object-{i:07d}.csv" for i in range(existing, n))
            list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))
    return bucket


def _watch_peak(process: subprocess.Popen[str], peak: dict[str, int]) -> None:
    """Keep the child's VmHWM (peak RSS since its exec), sampled every 0.1 s, in ``peak["kb"]``."""
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak["kb"] = max(peak["kb"], int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.1)


def run(endpoint: str, queues: Queues, n: int) -> dict[str, Any]:
    bucket = ensure_bucket(endpoint, n)
    url = queues.create(f"bf{n}")
    config = {
        "aws": {"region": REGION, "endpoint_url": endpoint},
        "queue": {"url": url},
        "routes": [{"name": "all", "bucket": bucket, "prefix": "data/", "handler": {"type": "log"}}],
    }
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as tmp:
        path = Path(tmp) / "backfill.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "STATE_DIRECTORY": tmp}
        started = time.perf_counter()
        # The command's own high-water mark, read from /proc while it runs: getrusage's children
        # maxrss would also count this process's memory, which the child has until its exec.
        process = subprocess.Popen(
            [sys.executable, "-m", "watcher", "backfill", "-c", str(path), f"s3://{bucket}/"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak = {"kb": 0}
        watching = threading.Thread(target=_watch_peak, args=(process, peak), daemon=True)
        watching.start()
        stdout, stderr = process.communicate()
        seconds = time.perf_counter() - started
        watching.join(5)
        done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    counts = {name: int(value) for value, name in re.findall(r"(\d+) (listed|matched|sent|failed)", done.stdout)}
    if counts.get("sent") != n:
        raise RuntimeError(f"sent {counts.get('sent')} of {n}:\n{done.stdout}")
    depth = int(
        queues.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    return {
        "objects": n,
        "sent": counts["sent"],
        "in_queue": depth,
        "seconds": seconds,
        "objects_per_second": n / seconds,
        "peak_rss_mb": peak["kb"] / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Objects/s enqueued by `watcher backfill`, and its memory.")
    parser.add_argument("--objects", type=int, nargs="+", default=[20000, 60000], help="sizes to run (ascending)")
    parser.add_argument("--endpoint", default="http://127.0.0.1:4566", help="the LocalStack (default %(default)s)")
    args = parser.parse_args()
    check_endpoint(args.endpoint)
    queues = Queues(args.endpoint)
    rows = []
    try:
        for n in sorted(args.objects):
            print(f"backfill of {n} objects ...", end=" ", flush=True)
            rows.append(run(args.endpoint, queues, n))
            print(f"{rows[-1]['objects_per_second']:.0f} objects/s, peak RSS {rows[-1]['peak_rss_mb']:.0f} MB")
    finally:
        queues.delete_all()
    print(f"\n{'objects':>8} {'seconds':>8} {'objects/s':>10} {'peak RSS MB':>12}")
    for row in rows:
        print(
            f"{row['objects']:>8} {row['seconds']:>8.1f} {row['objects_per_second']:>10.0f} {row['peak_rss_mb']:>12.0f}"
        )
    met = all(row["objects_per_second"] >= TARGET for row in rows)
    print(f"target >= {TARGET:.0f} objects/s enqueued: {'MET' if met else 'NOT MET'}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"backfill-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"rows": rows, "target": TARGET, "target_met": met}, indent=2) + "\n")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
