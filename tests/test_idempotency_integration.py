"""The idempotency store with real workers on LocalStack, on both backends (a SQLite file the
workers share; DynamoDB Local): duplicates delivered at once to two workers run the job once, a
worker killed mid-unit loses its lease and another worker runs the unit, and a message whose
second unit failed runs only that unit again."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.fixtures import s3_event
from tests.support.idempotency import BACKENDS, idempotency_section
from tests.support.process import WatcherProcess, base_config, calls, provision_named_queue, wait_until
from tests.test_worker_integration import python_route, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(params=BACKENDS)
def idempotency(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    endpoint = request.getfixturevalue("dynamodb_endpoint") if request.param == "dynamodb" else None
    return idempotency_section(str(request.param), tmp_path, endpoint)


def drained(queues: Any) -> bool:
    return queues.empty() and queues.depth(queues.dlq_url)["visible"] == 0


def test_a_duplicate_sent_to_two_workers_at_once_runs_the_job_once(
    idempotency: dict[str, Any], make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(max_receive_count=8)
    calls_file = tmp_path / "calls.jsonl"
    route = python_route("render", "sleep", calls_file, prefix="in/", options={"seconds": 2})
    config = base_config(queues.url, [route], idempotency=idempotency)
    config["queue"]["max_in_flight"] = 1  # each worker holds one message: one copy each
    workers = [WatcherProcess(dict(config), tmp_path) for _ in range(2)]
    try:
        for worker in workers:
            worker.wait_started()
        body = s3_event("lake", "in/movie.mp4")
        for _ in range(2):  # S3 delivers at least once: here, twice
            queues.send(body)
        wait_until(lambda: drained(queues), 60, what="both copies deleted")
        assert [c["event"] for c in calls(calls_file)] == ["call", "done"]
        skips = sum(w.metric("watcher_records_skipped_total", {"reason": "duplicate"}) for w in workers)
        assert skips == 1
        assert sum(w.metric("watcher_sqs_messages_received_total") for w in workers) >= 3  # one waited its turn
        waited = [u for w in workers for u in w.units() if u.get("outcome") == "retry"]
        assert waited and all("in progress elsewhere" in u["error"] for u in waited)
    finally:
        for worker in workers:
            assert worker.stop() == 0


def test_a_worker_killed_mid_unit_loses_its_lease_and_another_worker_runs_the_unit(
    idempotency: dict[str, Any], make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(visibility_timeout=6)
    calls_file = tmp_path / "calls.jsonl"

    def config(seconds: float) -> dict[str, Any]:
        route = python_route("render", "sleep", calls_file, prefix="in/", options={"seconds": seconds})
        document = base_config(queues.url, [route], idempotency=idempotency)
        document["queue"]["visibility_timeout"] = 6  # the lease lasts as long, renewed every 3 s
        return document

    doomed = WatcherProcess(config(600), tmp_path)
    doomed.wait_started()
    queues.send(s3_event("lake", "in/movie.mp4"))
    wait_until(lambda: calls(calls_file), 30, what="the first worker to start the unit")
    time.sleep(4)  # long enough for a lease renewal: the claim stays held past its first 6 s
    doomed.signal(signal.SIGKILL)
    killed_at = time.time()
    doomed.stop()
    survivor = WatcherProcess(config(0.5), tmp_path)
    try:
        survivor.wait_started()
        wait_until(lambda: len(calls(calls_file)) == 3, 60, what="the second worker to run the unit")
        first, second, done = calls(calls_file)
        assert (first["event"], second["event"], done["event"]) == ("call", "call", "done")
        assert second["time"] > killed_at + 1  # not before the message and the lease came free
        wait_until(lambda: drained(queues), 30, what="the message deleted")
    finally:
        assert survivor.stop() == 0


def test_on_redelivery_only_the_unit_that_failed_runs_again(
    idempotency: dict[str, Any], make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    calls_file = tmp_path / "calls.jsonl"
    routes = [
        python_route("index", "record", calls_file, prefix="in/"),
        python_route("thumbnail", "fail_first", calls_file, prefix="in/"),
    ]
    worker = WatcherProcess(base_config(queues.url, routes, idempotency=idempotency), tmp_path)
    try:
        worker.wait_started()
        queues.send(s3_event("lake", "in/photo.jpg"))
        wait_until(lambda: len(calls(calls_file)) >= 3 and drained(queues), 60, what="the retry run, then the delete")
        ran = sorted((c["route"], c["receive_count"]) for c in calls(calls_file))
        assert ran == [("index", 1), ("thumbnail", 1), ("thumbnail", 2)]
        assert worker.metric("watcher_records_skipped_total", {"reason": "duplicate"}) == 1
    finally:
        assert worker.stop() == 0


def test_provision_creates_the_dynamodb_table_with_its_ttl_and_check_live_sees_it(
    dynamodb_endpoint: str, unique: str, tmp_path: Path
) -> None:
    table = f"watcher-provisioned-{unique}"
    config = base_config(
        "",
        [{"name": "a", "prefix": "in/", "handler": {"type": "log"}}],
        idempotency={"backend": "dynamodb", "table": table, "endpoint_url": dynamodb_endpoint},
    )
    path = provision_named_queue(config, f"watcher-idem-{unique}", tmp_path)
    again = run_cli("provision", "-c", str(path))
    assert f"idempotency table {table} (exists" in again.stdout
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    described = dynamodb.describe_table(TableName=table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    checked = run_cli("check", "-c", str(path), "--live")
    assert checked.returncode == 0, checked.stdout
    assert f"ok: idempotency table {table} exists" in checked.stdout
