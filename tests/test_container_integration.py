"""The container handler end to end: S3 upload -> notification -> SQS on LocalStack -> `watcher run`
as a subprocess -> the user's script on a real Docker engine (image built locally from busybox) or
as a host process -> outputs in S3. Every test runs with both runtimes, and afterwards no container
and no work directory may be left behind."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from tests.support.containers import (
    Jobs,
    checksum_outputs,
    container_route,
    exit_code_outcomes,
    job_folders,
    keys,
    land,
    processes_with,
    read,
    script,
    unit_lines,
)
from tests.support.fixtures import s3_event
from tests.support.process import WatcherProcess, base_config, provision_named_queue, wait_until

pytestmark = pytest.mark.integration


def test_a_script_turns_an_upload_into_outputs_under_its_request_id(
    jobs: Jobs, s3: Any, sqs: Any, unique: str, tmp_path: Path
) -> None:
    route = container_route(
        "checksum",
        jobs.runtime,
        jobs.work_dir,
        script=script("checksum.sh"),
        output=f"s3://{jobs.bucket}/results/",
        environment={"GREETING": "hello from the route"},
        # "in", not "in put/": LocalStack matches notification filters against the URL-encoded key.
        route={"bucket": jobs.bucket, "prefix": "in"},
    )
    config = base_config("", [route])
    provision_named_queue(config, f"watcher-jobs-{unique}", tmp_path)
    worker = WatcherProcess(config, tmp_path)
    content = b"one\ntwo\nthree\n"
    try:
        worker.wait_started()
        s3.put_object(Bucket=jobs.bucket, Key="in put/file 1.txt", Body=content)
        [line] = unit_lines(worker, 1)
        assert line["outcome"] == "ok", line
        assert line["exit_code"] == 0 and line["outputs"] == 6
        assert "checksum done for in put/file 1.txt" in line["output_tail"]  # the job's output, in its summary line
        assert job_folders(jobs.work_dir) == []  # removed before the unit's line, the worker still running

        request_id = checksum_outputs(s3, jobs.bucket, content)
        folder = f"results/{request_id}"
        assert read(s3, jobs.bucket, f"{folder}/stats/request_id.txt").strip() == request_id
        assert read(s3, jobs.bucket, f"{folder}/stats/greeting.txt").strip() == "hello from the route"
        bucket, key, input_file, output_dir = read(s3, jobs.bucket, f"{folder}/stats/contract.txt").strip().split("|")
        assert (bucket, key) == (jobs.bucket, "in put/file 1.txt")
        assert input_file.endswith("/input/file 1.txt") and output_dir.endswith("/output")
        event = json.loads(read(s3, jobs.bucket, f"{folder}/stats/event.json"))
        assert event["s3"]["object"]["key"] in ("in+put/file+1.txt", "in%20put/file%201.txt")  # as S3 sent it
        log = read(s3, jobs.bucket, f"{folder}/.watcher/log.txt")
        assert log == "checksum done for in put/file 1.txt\n"
        assert worker.metric("watcher_container_jobs_total", {"route": "checksum", "result": "ok"}) == 1
        assert worker.metric("watcher_container_outputs_uploaded_total", {"route": "checksum"}) == 6
    finally:
        assert worker.stop() == 0


def test_a_duplicated_event_writes_to_the_same_request_id_folder(
    jobs: Jobs, s3: Any, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    route = container_route(
        "checksum",
        jobs.runtime,
        jobs.work_dir,
        script=script("checksum.sh"),
        output=f"s3://{jobs.bucket}/dup/",
        route={"prefix": "in/"},
    )
    worker = WatcherProcess(base_config(queues.url, [route]), tmp_path)
    try:
        worker.wait_started()
        s3.put_object(Bucket=jobs.bucket, Key="in/a+b.csv", Body=b"x\n")
        body = s3_event(jobs.bucket, quote_plus("in/a+b.csv"))  # the same object version, twice
        queues.send(body)
        queues.send(body)
        lines = unit_lines(worker, 2)
        assert [line["outcome"] for line in lines] == ["ok", "ok"]
        folders = {key.split("/")[1] for key in keys(s3, jobs.bucket, "dup/")}
        assert len(folders) == 1, folders
    finally:
        assert worker.stop() == 0


def test_a_two_route_chain_feeds_the_first_routes_output_to_the_second(
    jobs: Jobs, s3: Any, unique: str, tmp_path: Path
) -> None:
    routes = [
        container_route(
            "upper",
            jobs.runtime,
            jobs.work_dir,
            script=script("upper.sh"),
            output=f"s3://{jobs.bucket}/stage1/",
            route={"bucket": jobs.bucket, "prefix": "in/", "suffix": ".txt"},
        ),
        container_route(
            "checksum",
            jobs.runtime,
            jobs.work_dir,
            script=script("checksum.sh"),
            output=f"s3://{jobs.bucket}/stage2/",
            route={"bucket": jobs.bucket, "prefix": "stage1/", "suffix": ".txt"},
        ),
    ]
    config = base_config("", routes)
    provision_named_queue(config, f"watcher-chain-{unique}", tmp_path)
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        s3.put_object(Bucket=jobs.bucket, Key="in/words.txt", Body=b"video\nframes\n")
        lines = unit_lines(worker, 2)
        assert [(line["route"], line["outcome"]) for line in lines] == [("upper", "ok"), ("checksum", "ok")]
        [checksum] = [k for k in keys(s3, jobs.bucket, "stage2/") if k.endswith("upper.txt.sha256")]
        assert read(s3, jobs.bucket, checksum).strip() == hashlib.sha256(b"VIDEO\nFRAMES\n").hexdigest()
        # The first job's log (stage1/<id>/.watcher/log.txt) matches the second route's filter, but is
        # never taken for an input.
        wait_until(lambda: worker.metric("watcher_records_skipped_total", {"reason": "job_log"}) >= 1, 10)
        time.sleep(2)
        assert len(worker.units()) == 2
    finally:
        assert worker.stop() == 0


def test_exit_codes_listed_as_permanent_go_to_the_dlq_at_once_others_are_retried(
    jobs: Jobs, s3: Any, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(max_receive_count=2)
    routes = [
        container_route(
            "strict",
            jobs.runtime,
            jobs.work_dir,
            command='echo "rejecting $STORAGE_OBJECT_KEY"; exit 3',
            permanent_exit_codes=[3],
            route={"prefix": "strict/"},
        ),
        container_route(
            "flaky", jobs.runtime, jobs.work_dir, command="echo trying; exit 1", route={"prefix": "flaky/"}
        ),
    ]
    worker = WatcherProcess(base_config(queues.url, routes), tmp_path)
    try:
        worker.wait_started()
        for key in ("strict/bad.csv", "flaky/later.csv"):
            land(s3, queues, jobs.bucket, key)
        collected = queues.wait_for_dead_letters(2, 60)
        by_key = exit_code_outcomes(worker, collected)
        assert "MessageAttributes" not in by_key["flaky/later.csv"]  # moved by the queue's redrive policy
        assert worker.metric("watcher_container_jobs_total", {"route": "flaky", "result": "exit_code"}) == 2
    finally:
        assert worker.stop() == 0


def test_a_job_longer_than_its_timeout_is_killed_and_retried(
    jobs: Jobs, s3: Any, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    route = container_route(
        "slow", jobs.runtime, jobs.work_dir, command="echo started; sleep 97.5; echo never", timeout_seconds=2
    )
    worker = WatcherProcess(base_config(queues.url, [route]), tmp_path)
    try:
        worker.wait_started()
        land(s3, queues, jobs.bucket, "in/slow.bin")
        [line] = unit_lines(worker, 1)
        assert line["outcome"] == "retry"
        assert line["error"] == "timed out after 2s: the job was killed; output ends with: 'started\\n'"
        assert line["duration_ms"] < 15_000
        assert processes_with("sleep 97.5") == []  # killed, not left running
        assert job_folders(jobs.work_dir) == []
        assert worker.metric("watcher_container_jobs_total", {"route": "slow", "result": "timeout"}) == 1
    finally:
        worker.stop()


def test_a_job_three_visibility_timeouts_long_runs_once(jobs: Jobs, s3: Any, make_queues: Any, tmp_path: Path) -> None:
    queues = make_queues(visibility_timeout=2)
    route = container_route("long", jobs.runtime, jobs.work_dir, command="sleep 7; echo done")
    worker = WatcherProcess(base_config(queues.url, [route], queue={"visibility_timeout": 2}), tmp_path)
    try:
        worker.wait_started()
        land(s3, queues, jobs.bucket, "in/long.bin")
        [line] = unit_lines(worker, 1, timeout=30)
        assert line["outcome"] == "ok"
        time.sleep(3)  # a redelivery would show up as a second unit
        assert len(worker.units()) == 1
        assert worker.metric("watcher_sqs_visibility_extensions_total") >= 4
    finally:
        assert worker.stop() == 0
