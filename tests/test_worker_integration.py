"""`watcher run` end to end on a real LocalStack: S3 uploads -> bucket notifications -> SQS ->
the worker as a real subprocess -> handlers -> delete / retry / dead-letter."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fixtures import s3_event
from tests.support.process import REPO, WatcherProcess, base_config, calls, provision_named_queue, wait_until

pytestmark = pytest.mark.integration

HANDLERS = "tests.support.handlers"


def python_route(name: str, function: str, calls_file: Path, **extra: Any) -> dict[str, Any]:
    options = {"calls_file": str(calls_file), **extra.pop("options", {})}
    return {
        "name": name,
        "handler": {"type": "python", "function": f"{HANDLERS}:{function}", "options": options},
        **extra,
    }


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_s3_uploads_reach_exactly_the_matching_routes(s3: Any, sqs: Any, unique: str, tmp_path: Path) -> None:
    bucket, queue = f"lake-{unique}", f"watcher-upload-{unique}"
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(
        "",
        [
            python_route("markers", "record", calls_file, bucket=bucket, prefix="events/", suffix="_SUCCESS"),
            python_route("csv", "record", calls_file, bucket=bucket, prefix="raw/", suffix=".csv"),
        ],
    )
    config_path = provision_named_queue(config, queue, tmp_path)
    checked = run_cli("check", "-c", str(config_path), "--live")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        uploads = [
            "events/2026/11/23/part-0000.csv",  # prefix matches, suffix does not: filtered by S3
            "events/2026/11/23/_SUCCESS",  # markers
            "raw/in put/file 1+2.csv",  # csv, key with spaces and a plus
            "raw/notes.txt",  # filtered by S3
            "other/x.csv",  # filtered by S3
            "raw/",  # a folder marker: never a unit of work
        ]
        for key in uploads:
            s3.put_object(Bucket=bucket, Key=key, Body=b"abc")
        wait_until(lambda: len(calls(calls_file)) >= 2, 30, what="two handler calls")
        time.sleep(3)  # anything else would have arrived by now
        seen = sorted((c["route"], c["key"]) for c in calls(calls_file))
        assert seen == [("csv", "raw/in put/file 1+2.csv"), ("markers", "events/2026/11/23/_SUCCESS")]
        marker = next(c for c in calls(calls_file) if c["route"] == "markers")
        assert marker["dataset_uri"] == f"s3://{bucket}/events/2026/11/23"
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") >= 2, 10, what="deletes")
    finally:
        assert worker.stop() == 0
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=f"{queue}-dlq")["QueueUrl"])


def test_check_live_reports_a_bucket_not_wired_to_the_queue(
    s3: Any, make_queues: Any, unique: str, tmp_path: Path
) -> None:
    queues = make_queues()
    bucket = f"unwired-{unique}"
    s3.create_bucket(Bucket=bucket)
    config = base_config(
        queues.url, [{"name": "lonely", "bucket": bucket, "prefix": "in/", "handler": {"type": "log"}}]
    )
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli("check", "-c", str(path), "--live")
    assert result.returncode == 1
    assert f"problem: route lonely: bucket {bucket} sends no notification to this queue" in result.stdout


def test_heartbeat_keeps_a_job_of_three_visibility_timeouts_from_redelivery(make_queues: Any, tmp_path: Path) -> None:
    queues = make_queues(visibility_timeout=2)
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(
        queues.url,
        [python_route("slow", "sleep", calls_file, options={"seconds": 7})],
        queue={"visibility_timeout": 2, "max_in_flight": 2},
    )
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        queues.send(s3_event("b", "slow/job.bin"))
        wait_until(lambda: any(c["event"] == "done" for c in calls(calls_file)), 20, what="the slow job to finish")
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") == 1, 10, what="the delete")
        time.sleep(3)  # a redelivery would show up as a second call
        starts = [c for c in calls(calls_file) if c["event"] == "call"]
        assert len(starts) == 1, starts
        assert worker.metric("watcher_sqs_visibility_extensions_total") >= 4
        assert queues.empty()
    finally:
        assert worker.stop() == 0


def test_retryable_failure_backs_off_then_lands_in_the_dlq_after_max_receive_count(
    make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(visibility_timeout=30, max_receive_count=3)
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(queues.url, [python_route("flaky", "fail_retryable", calls_file)])
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        message_id = queues.send(s3_event("b", "in/data.csv"))
        wait_until(lambda: len(calls(calls_file)) >= 3, 30, what="three attempts")
        dead = wait_until(lambda: queues.receive(queues.dlq_url), 30, what="the message in the DLQ")
        assert dead[0]["MessageId"] == message_id  # SQS's own redrive keeps the message id
        attempts = calls(calls_file)
        assert [c["receive_count"] for c in attempts] == [1, 2, 3]
        gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(attempts)]
        # retry_initial_seconds 1, retry_max_seconds 2, equal jitter: >= 0.5 s then >= 1 s, not 30 s (visibility)
        assert gaps[0] >= 0.5 and gaps[1] >= 1.0, gaps
        assert all(gap < 10 for gap in gaps), gaps
        assert worker.metric("watcher_sqs_messages_retried_total") == 3
        assert worker.metric("watcher_records_total", {"route": "flaky", "outcome": "retry"}) == 3
        retries = worker.events("message will be retried")
        assert retries[0]["attempts_left"] == 2 and retries[0]["reason"].startswith(
            "route flaky: downstream unavailable"
        )
    finally:
        assert worker.stop() == 0


def test_permanent_failure_goes_to_the_dlq_at_once_with_its_reason(make_queues: Any, tmp_path: Path) -> None:
    queues = make_queues(max_receive_count=5)
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(queues.url, [python_route("strict", "fail_permanent", calls_file)])
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        body = s3_event("b", "in/bad+file.csv")
        queues.send(body)
        queues.sqs.send_message(QueueUrl=queues.url, MessageBody="this is not JSON")
        dead = queues.wait_for_dead_letters(2, 30)
        by_route = {m["MessageAttributes"]["watcher.route"]["StringValue"]: m for m in dead}
        handled = by_route["strict"]
        assert handled["Body"] == body
        assert (
            handled["MessageAttributes"]["watcher.error"]["StringValue"]
            == "route strict: bad input: in/bad file.csv (test)"
        )
        assert handled["MessageAttributes"]["watcher.receive_count"] == {"DataType": "Number", "StringValue": "1"}
        unparseable = by_route["-"]
        assert unparseable["Body"] == "this is not JSON"
        assert unparseable["MessageAttributes"]["watcher.error"]["StringValue"].startswith(
            "unparseable message: message body is not JSON"
        )
        assert len(calls(calls_file)) == 1  # not retried
        wait_until(lambda: queues.empty(), 10, what="the source queue to be empty")
        assert worker.metric("watcher_sqs_messages_dead_lettered_total") == 2
        assert worker.metric("watcher_errors_total", {"stage": "parse"}) == 1
    finally:
        assert worker.stop() == 0


def test_sigterm_during_a_long_job_exits_within_the_grace_period_and_hands_the_message_back(
    make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(visibility_timeout=60)
    calls_file = tmp_path / "calls.jsonl"
    grace = 2
    config = base_config(
        queues.url,
        [python_route("long", "sleep", calls_file, options={"seconds": 120})],
        queue={"visibility_timeout": 60},
        worker={"shutdown_grace_seconds": grace},
    )
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        message_id = queues.send(s3_event("b", "long/video.mp4"))
        wait_until(lambda: calls(calls_file), 20, what="the job to start")
        started = time.monotonic()
        worker.signal(signal.SIGTERM)
        worker.process.wait(grace + 8)
        elapsed = time.monotonic() - started
        assert worker.process.returncode == 0
        assert grace <= elapsed < grace + 5, elapsed
        # Visible again at once, not after the 60 s visibility timeout, and never deleted.
        back = wait_until(lambda: queues.receive(wait=1), 5, what="the message to be visible again")
        assert back[0]["MessageId"] == message_id
        assert back[0]["Attributes"]["ApproximateReceiveCount"] == "2"
        assert worker.events("message handed back unfinished at shutdown")
        assert not [c for c in calls(calls_file) if c["event"] == "done"]
    finally:
        worker.stop()


def test_metrics_health_and_readiness_over_http(make_queues: Any, tmp_path: Path) -> None:
    queues = make_queues()
    config = base_config(
        queues.url,
        [{"name": "all-csv", "suffix": ".csv", "handler": {"type": "log"}}],
        metrics={"queue_poll_seconds": 1},
    )
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        for index in range(5):
            queues.send(s3_event("b", f"in/{index}.csv"))
        queues.send(s3_event("b", "in/skip.txt"))
        queues.send(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}))
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") == 7, 20, what="7 deletes")
        assert worker.metric("watcher_sqs_messages_received_total") == 7
        assert worker.metric("watcher_records_total", {"route": "all-csv", "outcome": "ok"}) == 5
        assert worker.metric("watcher_records_skipped_total", {"reason": "no_route"}) == 1
        assert worker.metric("watcher_records_skipped_total", {"reason": "test_event"}) == 1
        assert worker.metric("watcher_handler_duration_seconds_count", {"route": "all-csv", "handler": "log"}) == 5
        assert worker.metric("watcher_sqs_lag_seconds_count") == 7
        assert worker.metric("watcher_sqs_messages_in_flight") == 0
        assert worker.metric("watcher_build_info", {"version": "0.1.0"}) == 1
        wait_until(lambda: worker.metric("watcher_sqs_queue_messages", {"state": "visible"}) == 0, 5, what="depth")
        assert worker.http_get("/healthz")[0] == 200
        status, body = worker.http_get("/readyz")
        assert status == 200 and body.startswith("ready")
        summaries = worker.units()
        assert {s["key"] for s in summaries} == {f"in/{i}.csv" for i in range(5)}
        assert all(s["route"] == "all-csv" and s["handler"] == "log" and s["message_id"] for s in summaries)
    finally:
        assert worker.stop() == 0


def test_max_in_flight_bounds_the_units_running_at_once_and_each_message_is_handled_and_deleted_once(
    make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(
        queues.url,
        [python_route("steady", "sleep", calls_file, options={"seconds": 0.2})],
        queue={"max_in_flight": 3},
    )
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        keys = [f"in/{index}.csv" for index in range(15)]
        for key in keys:
            queues.send(s3_event("b", key))
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") == 15, 60, what="15 deletes")
        records = calls(calls_file)
        assert sorted(c["key"] for c in records if c["event"] == "call") == sorted(keys)
        # A slot is given back once a message's units are done (its delete may still be under way),
        # so at most max_in_flight units ever run at once. At equal times, count the end first.
        running = peak = 0
        for _, starts in sorted((c["time"], c["event"] == "call") for c in records):
            running += 1 if starts else -1
            peak = max(peak, running)
        assert peak <= 3
        wait_until(lambda: queues.empty(), 10, what="an empty queue")
        assert worker.metric("watcher_sqs_messages_received_total") == 15
        assert worker.metric("watcher_sqs_messages_in_flight") == 0
    finally:
        assert worker.stop() == 0


def test_a_second_signal_exits_at_once(make_queues: Any, tmp_path: Path) -> None:
    queues = make_queues(visibility_timeout=60)
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(
        queues.url,
        [python_route("long", "sleep", calls_file, options={"seconds": 120})],
        worker={"shutdown_grace_seconds": 60},
    )
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        queues.send(s3_event("b", "long/job.bin"))
        wait_until(lambda: calls(calls_file), 20, what="the job to start")
        worker.signal(signal.SIGTERM)
        worker.wait_for_event("shutting down: no more receives")
        started = time.monotonic()
        worker.signal(signal.SIGINT)
        worker.process.wait(5)
        assert time.monotonic() - started < 5
        assert worker.process.returncode == 130
    finally:
        worker.stop()
