"""`watcher backfill` on LocalStack: 1,000 objects with hostile keys (spaces, `+`, `%`, unicode, keys
of 1 KB) backfilled through a real worker with the idempotency store on: every object's job runs
exactly once, a second backfill runs nothing, --dry-run sends nothing, an interrupted backfill resumes
where it stopped, and in a versioned bucket a backfilled object has its original event's request id."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Queues
from tests.support.process import REPO, WatcherProcess, base_config, calls, provision_named_queue, wait_until
from tests.test_worker_integration import python_route, run_cli
from watcher.envelope import parse_body

pytestmark = pytest.mark.integration
OBJECTS = 1000
VARIANTS = (
    "file with spaces.csv",
    "a+b=c&d.csv",
    "100% done.csv",
    "%2B is a plus.csv",
    "ünïcödé 日本語.csv",
    "emoji 🎉 .csv",
    "tab\tand ~tilde'quote.csv",
)


def hostile_key(index: int) -> str:
    if index % 50 == 0:  # a key of 1,024 bytes, S3's maximum
        head = f"hostile/{index:04d}/long-"
        return head + "é" * ((1024 - len(head.encode())) // 2)
    return f"hostile/{index:04d}/{VARIANTS[index % len(VARIANTS)]}"


@pytest.fixture(scope="module")
def lake(localstack_endpoint: str) -> Iterator[tuple[str, list[str]]]:
    """A bucket holding the 1,000 objects, not wired to any queue (no original events)."""
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=localstack_endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    bucket = f"backfill-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    keys = [hostile_key(i) for i in range(OBJECTS)]
    assert max(len(k.encode()) for k in keys) == 1024
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=key.encode()), keys))
    yield bucket, keys


def config_file(queues: Any, tmp_path: Path, calls_file: Path) -> tuple[dict[str, Any], Path]:
    config = base_config(
        queues.url,
        [python_route("all", "record", calls_file, prefix="hostile/")],
        idempotency={"backend": "sqlite", "path": str(tmp_path / "idempotency.db")},
    )
    config["queue"]["max_in_flight"] = 20
    path = tmp_path / "backfill.yaml"
    path.write_text(yaml.safe_dump(config))
    return config, path


def test_every_object_runs_once_and_a_second_backfill_runs_nothing(
    lake: tuple[str, list[str]], make_queues: Any, tmp_path: Path
) -> None:
    bucket, keys = lake
    queues = make_queues()
    calls_file = tmp_path / "calls.jsonl"
    config, path = config_file(queues, tmp_path, calls_file)

    dry = run_cli("backfill", "-c", str(path), f"s3://{bucket}/hostile/", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sum(line.startswith("would send s3://") for line in dry.stdout.splitlines()) == OBJECTS
    assert queues.empty()  # nothing sent

    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        first = run_cli("backfill", "-c", str(path), f"s3://{bucket}/hostile/")
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"{OBJECTS} listed, {OBJECTS} matched, {OBJECTS} sent, 0 failed" in first.stdout
        wait_until(lambda: len(calls(calls_file)) >= OBJECTS, 120, what="every object's unit")
        wait_until(lambda: queues.empty(), 30, what="the queue drained")
        ran = [c["key"] for c in calls(calls_file)]
        assert len(ran) == OBJECTS and sorted(ran) == sorted(keys)  # each once, keys intact

        second = run_cli("backfill", "-c", str(path), f"s3://{bucket}/hostile/")
        assert second.returncode == 0, second.stdout
        wait_until(lambda: queues.empty(), 60, what="the second backfill drained")
        wait_until(
            lambda: worker.metric("watcher_records_skipped_total", {"reason": "duplicate"}) == OBJECTS, 30,
            what="every object skipped as a duplicate",
        )  # fmt: skip
        assert len(calls(calls_file)) == OBJECTS
    finally:
        assert worker.stop() == 0


def test_an_interrupted_backfill_resumes_where_it_stopped(
    lake: tuple[str, list[str]], make_queues: Any, tmp_path: Path
) -> None:
    bucket, keys = lake
    queues = make_queues()
    _, path = config_file(queues, tmp_path, tmp_path / "calls.jsonl")
    checkpoint = tmp_path / "checkpoint.json"
    command = [sys.executable, "-m", "watcher", "backfill", "-c", str(path), f"s3://{bucket}/hostile/"]
    stopped = subprocess.Popen(
        [*command, "--rate", "200", "--checkpoint", str(checkpoint)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    time.sleep(2.5)
    stopped.send_signal(signal.SIGINT)
    out, _ = stopped.communicate(timeout=60)
    assert stopped.returncode == 130, out
    assert "run again with --resume" in out and checkpoint.exists()
    resumed = subprocess.run(
        [*command, "--resume", "--checkpoint", str(checkpoint)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert not checkpoint.exists()  # done: nothing to resume
    bodies = []
    while batch := queues.receive(wait=1, visibility=300):
        bodies += [m["Body"] for m in batch]
    sent = [record.key for body in bodies for record in parse_body(body).records]
    assert sorted(set(sent)) == sorted(keys)  # nothing lost
    assert len(sent) - OBJECTS <= 10 * 8  # at worst, the batches under way at the stop are sent twice


def test_a_backfilled_object_of_a_versioned_bucket_has_its_original_events_request_id(
    s3: Any, sqs: Any, make_queues: Any, unique: str, tmp_path: Path
) -> None:
    target = make_queues()
    bucket = f"versioned-{unique}"
    config = base_config("", [{"name": "all", "bucket": bucket, "prefix": "in/", "handler": {"type": "log"}}])
    path = provision_named_queue(config, f"watcher-versioned-{unique}", tmp_path)  # bucket wired to it
    watched = Queues.existing(sqs, f"watcher-versioned-{unique}")
    try:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=bucket, Key="in/first version.csv", Body=b"1")
        s3.put_object(Bucket=bucket, Key="in/first version.csv", Body=b"22")  # the latest version
        originals = [
            record for m in wait_until(lambda: watched.receive(wait=2), 30, what="the original events")
            for record in parse_body(m["Body"]).records
        ]  # fmt: skip
        while len(originals) < 2:
            originals += [r for m in watched.receive(wait=2) for r in parse_body(m["Body"]).records]
        latest = next(r for r in originals if r.size == 2)
        backfill = run_cli("backfill", "-c", str(path), f"s3://{bucket}/in/", "--to-queue", target.url)
        assert backfill.returncode == 0, backfill.stdout + backfill.stderr
        assert "versioned bucket" in backfill.stdout
        [message] = target.receive(wait=2)
        [backfilled] = parse_body(message["Body"]).records
        assert backfilled.version_id == latest.version_id and backfilled.key == "in/first version.csv"
        assert backfilled.request_id == latest.request_id
        assert message["MessageAttributes"]["watcher.backfill"]["StringValue"]
    finally:
        watched.delete()


def test_a_success_marker_route_gets_one_event_per_dataset(
    s3: Any, make_queues: Any, unique: str, tmp_path: Path
) -> None:
    bucket = f"spark-{unique}"
    s3.create_bucket(Bucket=bucket)
    for day in ("21", "22", "23"):
        for part in range(3):
            s3.put_object(Bucket=bucket, Key=f"events/2026/11/{day}/part-{part:04d}.parquet", Body=b"x")
        if day != "23":  # the 23rd is still being written: no marker yet
            s3.put_object(Bucket=bucket, Key=f"events/2026/11/{day}/_SUCCESS", Body=b"")
    queues = make_queues()
    route = {
        "name": "datasets",
        "bucket": bucket,
        "prefix": "events/",
        "suffix": "_SUCCESS",
        "handler": {"type": "log"},
    }
    path = tmp_path / "spark.yaml"
    path.write_text(yaml.safe_dump(base_config(queues.url, [route])))
    result = run_cli("backfill", "-c", str(path), f"s3://{bucket}/events/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "11 listed, 2 matched, 2 sent" in result.stdout
    records = [r for m in queues.receive(wait=2) for r in parse_body(m["Body"]).records]
    assert sorted(r.key for r in records) == ["events/2026/11/21/_SUCCESS", "events/2026/11/22/_SUCCESS"]
