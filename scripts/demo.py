"""`make demo`: the main job, end to end, on the embedded LocalStack.

Provisions config/watcher.yaml (bucket, queue, DLQ, notifications), starts `watcher run` as a real
process, lands a Spark-style dataset (part files, then `_SUCCESS`) and a CSV with a space in its name,
and shows what the worker did: the units it ran, and its metrics.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from watcher.app import load_config
from watcher.commands.provision import provision

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "watcher.yaml"
UPLOADS = [
    "events/2026/11/23/part-0000.snappy.parquet",
    "events/2026/11/23/part-0001.snappy.parquet",
    "events/2026/11/23/_SUCCESS",  # the Spark job writes this last: one unit for the whole dataset
    "raw/sales 2026-11.csv",  # a key with a space: S3 sends it URL-encoded
    "raw/README.txt",  # not routed: S3's notification filter never sends it
]

BODIES = {"raw/sales 2026-11.csv": b"region,amount\nnorth,120\nsouth,80\n"}


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("watcher_") and not line.startswith("#") and "_created" not in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def read_lines(stream: Any, into: queue.Queue[dict[str, Any]]) -> None:
    """Parse the worker's JSON log lines in a thread, so the demo can wait with a deadline."""
    for raw in stream:
        try:
            into.put(json.loads(raw))
        except ValueError:
            print("   worker:", raw.rstrip())


def is_unit_summary(line: dict[str, Any]) -> bool:
    """A unit's summary: ``unit finished``, or the line of a message with one unit, which carries it."""
    return "outcome" in line and line.get("event") in (
        "unit finished",
        "message done",
        "message will be retried",
        "message dead-lettered",
    )


def wait_for(lines: queue.Queue[dict[str, Any]], done: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if is_unit_summary(line):
            print(f"== unit: route={line['route']} outcome={line['outcome']} dataset={line['dataset_uri']}")
        if done(line):
            return True
    return False


def main() -> int:
    config = load_config(CONFIG)
    print("== provisioning", CONFIG.relative_to(REPO))
    provision(config, say=lambda line: print("  ", line))
    worker = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "-c", str(CONFIG)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "WATCHER_LOGGING_FORMAT": "json"},
    )
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=read_lines, args=(worker.stdout, lines), daemon=True).start()
    try:
        if not wait_for(lines, lambda line: line.get("event") == "worker started", 60):
            print("the worker did not start; see its output above", file=sys.stderr)
            return 1
        print("== worker started; uploading")
        s3 = boto3.client(
            "s3",
            endpoint_url=config.aws.endpoint_url,
            region_name=config.aws.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        for key in UPLOADS:
            s3.put_object(Bucket="data-lake", Key=key, Body=BODIES.get(key, b"demo"))
            print("   s3://data-lake/" + key)
        finished = 0

        def two_units(line: dict[str, Any]) -> bool:
            nonlocal finished
            finished += is_unit_summary(line)
            return finished >= 2

        if not wait_for(lines, two_units, 30):
            print("expected 2 units of work within 30 s", file=sys.stderr)
            return 1
        time.sleep(1)
        print("== outputs of the container job (route raw-csv)")
        for item in s3.list_objects_v2(Bucket="data-lake", Prefix="reports/").get("Contents", []):
            print(f"   s3://data-lake/{item['Key']}")
            if item["Key"].endswith(".stats.txt"):
                body = s3.get_object(Bucket="data-lake", Key=item["Key"])["Body"].read().decode()
                print("".join(f"     | {line}\n" for line in body.splitlines()), end="")
        metrics = scrape(config.metrics.port)
        print(f"== metrics (http://127.0.0.1:{config.metrics.port}/metrics)")
        for name, value in sorted(metrics.items()):
            if value and not name.startswith(
                ("watcher_sqs_lag_seconds_bucket", "watcher_handler_duration_seconds_bucket")
            ):
                print(f"   {name} {value:g}")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    print("== done: run it for real with `watcher run -c config/watcher.yaml`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
