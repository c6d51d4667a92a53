"""`make demo`: the main job, end to end, on the embedded LocalStack.

Provisions config/watcher.yaml (bucket, queue, DLQ, notifications), starts a local server that behaves
like Fire Insights (scripts/fire_insights.py) and `watcher run` as a real process, lands a Spark-style
dataset (part files, then `_SUCCESS`) and a CSV with a space in its name, and shows what happened: the
workflow run the marker started (the POST and the polled status, as the server received them), the
units the worker ran, what the container job wrote, and the worker's metrics.

    python scripts/demo.py [--config FILE]   # another config: its first route's bucket gets the files
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO))

from scripts.fire_insights import FireServer, Recorded  # noqa: E402
from watcher.app import load_config  # noqa: E402
from watcher.commands.provision import provision  # noqa: E402

CONFIG = REPO / "config" / "watcher.yaml"
UPLOADS = [
    "events/2026/11/23/part-0000.snappy.parquet",
    "events/2026/11/23/part-0001.snappy.parquet",
    "events/2026/11/23/_SUCCESS",  # the Spark job writes this last: one workflow run for the whole dataset
    "raw/sales 2026-11.csv",  # a key with a space: S3 sends it URL-encoded
    "raw/README.txt",  # not routed: S3's notification filter never sends it
]
BODIES = {"raw/sales 2026-11.csv": b"region,amount\nnorth,120\nsouth,80\n"}
_HISTOGRAM_BUCKETS = (
    "watcher_sqs_lag_seconds_bucket",
    "watcher_handler_duration_seconds_bucket",
    "watcher_http_request_duration_seconds_bucket",
)
_FIRE = "fire request"  # lines of our own on the worker's queue: what the Fire Insights server received


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


def show(line: dict[str, Any]) -> None:
    if line.get("event") == _FIRE:
        call: Recorded = line["call"]
        if call.method == "POST":
            auth = "Bearer ***" if call.headers.get("Authorization", "").startswith("Bearer ") else "none"
            print(f"== Fire Insights: POST {call.path} (Authorization: {auth})")
            print(f"     {call.body} -> {call.status}, execution {call.response}")
        else:
            print(f"== Fire Insights: {call.method} {call.path} -> {call.status} {call.response}")
    elif is_unit_summary(line):
        extra = "".join(f" {k}={line[k]}" for k in ("http_status", "exit_code", "outputs", "error") if k in line)
        print(f"== unit: route={line['route']} outcome={line['outcome']} dataset={line['dataset_uri']}{extra}")


def wait_for(lines: queue.Queue[dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        show(line)
        if done(line):
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make demo: the main job end to end on LocalStack")
    parser.add_argument("--config", type=Path, default=CONFIG)
    args = parser.parse_args(argv)
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    fire = FireServer(secrets.token_hex(12), on_request=lambda call: lines.put({"event": _FIRE, "call": call}))
    # The config's fire-insights route reads these references (the defaults name port 9410).
    os.environ.update(FIRE_URL=fire.url, FIRE_TOKEN=fire.token)
    config = load_config(args.config)
    bucket = next(route.bucket for route in config.routes if route.bucket)
    shown = args.config.resolve().relative_to(REPO) if args.config.resolve().is_relative_to(REPO) else args.config
    print("== provisioning", shown)
    provision(config, say=lambda line: print("  ", line))
    with fire:
        print(f"== a Fire Insights stand-in serves {fire.url} (scripts/fire_insights.py)")
        worker = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "-c", str(args.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "WATCHER_LOGGING_FORMAT": "json"},
        )
        threading.Thread(target=read_lines, args=(worker.stdout, lines), daemon=True).start()
        try:
            return run(config, bucket, worker, lines)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)


def run(config: Any, bucket: str, worker: subprocess.Popen[str], lines: queue.Queue[dict[str, Any]]) -> int:
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
        s3.put_object(Bucket=bucket, Key=key, Body=BODIES.get(key, b"demo"))
        print(f"   s3://{bucket}/{key}")
    units: dict[str, dict[str, Any]] = {}

    def two_units(line: dict[str, Any]) -> bool:
        if is_unit_summary(line):
            units[line["route"]] = line
        return len(units) >= 2

    if not wait_for(lines, two_units, 60):
        print("expected 2 units of work within 60 s", file=sys.stderr)
        return 1
    time.sleep(1)
    csv = next((line for line in units.values() if "request_id" in line), None)
    if csv is not None:
        print(f"== outputs of the container job (route {csv['route']})")
        folder = f"reports/{csv['request_id']}/"
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=folder).get("Contents", []):
            print(f"   s3://{bucket}/{item['Key']}")
            if item["Key"].endswith(".stats.txt"):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                print("".join(f"     | {line}\n" for line in body.splitlines()), end="")
    metrics = scrape(config.metrics.port)
    print(f"== metrics (http://127.0.0.1:{config.metrics.port}/metrics)")
    for name, value in sorted(metrics.items()):
        if value and not name.startswith(_HISTOGRAM_BUCKETS):
            print(f"   {name} {value:g}")
    print("== done: run it for real with `watcher run -c config/watcher.yaml`")
    print("   (and `python scripts/fire_insights.py` for a workflow API on 127.0.0.1:9410, the config's default)")
    return 0 if all(line["outcome"] == "ok" for line in units.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
