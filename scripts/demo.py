"""`make demo`: the main job, end to end, on the embedded LocalStack.

Provisions config/watcher.yaml (bucket, queue, DLQ, notifications), starts `watcher run` as a real
process, lands a Spark-style dataset (part files, then `_SUCCESS`) and a CSV with a space in its name,
and shows what the worker did: the units it ran, and its metrics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

from watcher.config import load_config
from watcher.provision import provision

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "watcher.yaml"
UPLOADS = [
    "events/2026/11/23/part-0000.snappy.parquet",
    "events/2026/11/23/part-0001.snappy.parquet",
    "events/2026/11/23/_SUCCESS",  # the Spark job writes this last: one unit for the whole dataset
    "raw/sales 2026-11.csv",  # a key with a space: S3 sends it URL-encoded
    "raw/README.txt",  # not routed: S3's notification filter never sends it
]


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("watcher_") and not line.startswith("#") and "_created" not in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def main() -> int:
    config = load_config(CONFIG)
    print("== provisioning", CONFIG.relative_to(REPO))
    provision(config, say=lambda line: print("  ", line))
    worker = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "-c", str(CONFIG)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"WATCHER_LOGGING_FORMAT": "json", **os.environ},
    )
    assert worker.stdout is not None
    lines: list[dict[str, object]] = []
    try:
        for raw in worker.stdout:
            lines.append(json.loads(raw))
            if lines[-1].get("event") == "worker started":
                break
        print("== worker started; uploading")
        s3 = boto3.client(
            "s3",
            endpoint_url=config.aws.endpoint_url,
            region_name=config.aws.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        for key in UPLOADS:
            s3.put_object(Bucket="data-lake", Key=key, Body=b"demo")
            print("   s3://data-lake/" + key)
        deadline = time.monotonic() + 30
        for raw in worker.stdout:
            line = json.loads(raw)
            lines.append(line)
            if line.get("event") == "unit finished":
                print(f"== unit: route={line['route']} outcome={line['outcome']} dataset={line['dataset_uri']}")
            if sum(1 for x in lines if x.get("event") == "unit finished") >= 2 or time.monotonic() > deadline:
                break
        time.sleep(1)
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
