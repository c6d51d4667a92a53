"""``runtime: batch`` end to end: S3 upload -> notification -> SQS on LocalStack -> `watcher run` as a
subprocess -> a job on a real implementation of the AWS Batch API (moto's server, tests/support/batch_bed.py),
which runs the job's container on the local Docker engine -> the job's entrypoint fetches the staged script and
input through pre-signed URLs, runs the script, hands back its result -> outputs in S3.

Not exercised here (the stand-in does not do them): vCPU/memory overrides taking effect (they are sent, see
tests/test_batch_runtime.py), Batch's own retries, queueing for capacity, an out-of-memory kill."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.batch_bed import BatchBed, batch_bed, job_containers
from tests.support.containers import (
    area_folders,
    checksum_outputs,
    container_route,
    exit_code_outcomes,
    keys,
    land,
    read,
    script,
    unit_lines,
)
from tests.support.process import WatcherProcess, base_config, provision_named_queue, wait_until

pytestmark = pytest.mark.integration
CONTRACT = ("INPUT_FILE_PATH", "TMP_INPUT_DIR", "TMP_OUTPUT_DIR", "STORAGE_OBJECT_KEY", "REQUEST_ID", "EVENT")


@pytest.fixture(scope="module")
def bed() -> Iterator[BatchBed]:
    with batch_bed() as started:
        yield started


@pytest.fixture
def queue(bed: BatchBed) -> str:
    return bed.new_queue()


@pytest.fixture
def bucket(s3: Any, unique: str) -> str:
    name = f"batch-{unique}"
    s3.create_bucket(Bucket=name)
    return name


def batch_route(name: str, bed: BatchBed, queue: str, work_dir: Path, **options: Any) -> dict[str, Any]:
    return container_route(
        name,
        "batch",
        work_dir,
        job_queue=queue,
        job_definition=bed.job_definition,
        batch_endpoint_url=bed.endpoint,
        logs_endpoint_url=bed.endpoint,  # moto serves both; LocalStack (aws.endpoint_url) serves S3 and SQS
        poll_max_seconds=1,
        **options,
    )


def staged(s3: Any, bucket: str) -> list[str]:
    return [key for key in keys(s3, bucket) if "/.watcher/batch/" in f"/{key}"]


def test_a_batch_job_turns_an_upload_into_outputs_under_its_request_id(
    bed: BatchBed, queue: str, s3: Any, bucket: str, unique: str, tmp_path: Path
) -> None:
    route = batch_route(
        "checksum",
        bed,
        queue,
        tmp_path / "work",
        script=script("checksum.sh"),
        output=f"s3://{bucket}/results/",
        environment={"GREETING": "hello from the route"},
        route={"bucket": bucket, "prefix": "in"},
    )
    config = base_config("", [route])
    provision_named_queue(config, f"watcher-batch-{unique}", tmp_path)
    worker = WatcherProcess(config, tmp_path)
    content = b"one\ntwo\nthree\n"
    try:
        worker.wait_started()
        s3.put_object(Bucket=bucket, Key="in put/file 1.txt", Body=content)
        [line] = unit_lines(worker, 1)
        assert line["outcome"] == "ok", line
        assert line["runtime"] == "batch" and line["exit_code"] == 0 and line["outputs"] == 6
        assert "checksum done for in put/file 1.txt" in line["output_tail"]

        [job] = bed.jobs(queue)
        assert job["status"] == "SUCCEEDED" and line["batch_job_id"] == job["jobId"]
        assert job["jobName"].startswith("watcher-checksum-")
        assert job["tags"]["watcher:route"] == "checksum" and job["tags"]["watcher:area"].startswith(str(tmp_path))
        # The job's CloudWatch log stream is named on the unit's line, linked, and holds what the script printed.
        stream = job["container"]["logStreamName"]
        assert line["batch_log_stream"] == stream
        assert line["batch_log_url"].startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/home")
        assert line["batch_log_url"].endswith(stream.replace("/", "$252F"))
        events = bed.logs().get_log_events(logGroupName="/aws/batch/job", logStreamName=stream)["events"]
        assert "checksum done for in put/file 1.txt" in [event["message"] for event in events]

        request_id = checksum_outputs(s3, bucket, content)
        assert request_id == job["tags"]["watcher:request_id"]
        folder = f"results/{request_id}"
        assert read(s3, bucket, f"{folder}/stats/request_id.txt").strip() == request_id
        assert read(s3, bucket, f"{folder}/stats/greeting.txt").strip() == "hello from the route"
        contract = read(s3, bucket, f"{folder}/stats/contract.txt").strip()
        assert contract == f"{bucket}|in put/file 1.txt|/tmp/watcher/job/input/file 1.txt|/tmp/watcher/job/output"
        event = json.loads(read(s3, bucket, f"{folder}/stats/event.json"))
        assert event["s3"]["object"]["key"] in ("in+put/file+1.txt", "in%20put/file%201.txt")
        assert read(s3, bucket, f"{folder}/.watcher/log.txt") == "checksum done for in put/file 1.txt\n"
        assert staged(s3, bucket) == []  # the staging folder is emptied after the job
        assert worker.metric("watcher_container_jobs_total", {"route": "checksum", "result": "ok"}) == 1
    finally:
        assert worker.stop() == 0
    assert job_containers() == []


def test_the_job_gets_the_contract_but_not_the_urls_and_hands_back_only_regular_files(
    bed: BatchBed, queue: str, s3: Any, bucket: str, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    checks = [f'grep -q "^{name}=" /tmp/env.txt || echo "missing {name}"' for name in CONTRACT]
    command = "\n".join(
        [
            "env > /tmp/env.txt",
            *checks,
            'grep -c "^WATCHER_" /tmp/env.txt > "$TMP_OUTPUT_DIR/watcher_variables.txt"',
            Path(script("escape.sh")).read_text(),  # symlinks, a hard link attempt, a FIFO
        ]
    )
    route = batch_route(
        "hostile", bed, queue, tmp_path / "work", command=command, output=f"s3://{bucket}/out/", route={"prefix": "in/"}
    )
    worker = WatcherProcess(base_config(queues.url, [route]), tmp_path)
    try:
        worker.wait_started()
        land(s3, queues, bucket, "in/x.bin")
        [line] = unit_lines(worker, 1)
        assert line["outcome"] == "ok", line
        assert "missing" not in line["output_tail"]
        uploaded = sorted(key.split("/", 2)[2] for key in keys(s3, bucket, "out/"))
        assert uploaded == [".watcher/log.txt", "ok.txt", "watcher_variables.txt"]
        assert read(s3, bucket, uploaded_key(s3, bucket, "watcher_variables.txt")).strip() == "0"
        [refused] = worker.events("outputs not uploaded")
        assert refused["skipped"] == {"symlink": 2, "special": 1}
    finally:
        assert worker.stop() == 0


def uploaded_key(s3: Any, bucket: str, name: str) -> str:
    [key] = [key for key in keys(s3, bucket, "out/") if key.endswith(f"/{name}")]
    return key


def test_exit_codes_listed_as_permanent_go_to_the_dlq_at_once_others_are_retried(
    bed: BatchBed, queue: str, s3: Any, bucket: str, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(max_receive_count=2)
    work_dir = tmp_path / "work"
    routes = [
        batch_route(
            "strict",
            bed,
            queue,
            work_dir,
            command='echo "rejecting $STORAGE_OBJECT_KEY"; exit 3',
            permanent_exit_codes=[3],
            output=f"s3://{bucket}/strict-out/",
            route={"prefix": "strict/"},
        ),
        batch_route(
            "flaky",
            bed,
            queue,
            work_dir,
            command="echo trying; exit 1",
            output=f"s3://{bucket}/flaky-out/",
            route={"prefix": "flaky/"},
        ),
    ]
    worker = WatcherProcess(base_config(queues.url, routes), tmp_path)
    try:
        worker.wait_started()
        for key in ("strict/bad.csv", "flaky/later.csv"):
            land(s3, queues, bucket, key)
        collected = queues.wait_for_dead_letters(2, 90)
        exit_code_outcomes(worker, collected)
        statuses = sorted((job["tags"]["watcher:route"], job["status"]) for job in bed.jobs(queue))
        assert statuses == [("flaky", "FAILED"), ("flaky", "FAILED"), ("strict", "FAILED")]  # one job per try
        # The log goes up on failure too; outputs never do.
        assert [key.rsplit("/", 2)[1:] for key in keys(s3, bucket, "strict-out/")] == [[".watcher", "log.txt"]]
        assert staged(s3, bucket) == []
    finally:
        assert worker.stop() == 0


def test_a_job_longer_than_its_timeout_is_terminated_and_retried(
    bed: BatchBed, queue: str, s3: Any, bucket: str, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    route = batch_route(
        "slow", bed, queue, tmp_path / "work", command="echo started; sleep 97.5; echo never", timeout_seconds=3
    )
    route["handler"]["staging"] = f"s3://{bucket}/staging/"
    worker = WatcherProcess(base_config(queues.url, [route]), tmp_path)
    try:
        worker.wait_started()
        land(s3, queues, bucket, "in/slow.bin")
        [line] = unit_lines(worker, 1)
        assert line["outcome"] == "retry"
        # What the script printed before it was killed comes from the job's CloudWatch log stream.
        assert line["error"] == "timed out after 3s: the job was killed; output ends with: 'started\\n'"
        assert line["duration_ms"] < 20_000
        [job] = bed.jobs(queue)
        assert job["status"] == "FAILED" and job["statusReason"] == "watcher: timed out after 3s"
        assert job["timeout"] == {"attemptDurationSeconds": 63}  # Batch's own backstop, should the worker die
        assert job_containers() == []
        assert staged(s3, bucket) == []
        assert worker.metric("watcher_container_jobs_total", {"route": "slow", "result": "timeout"}) == 1
    finally:
        worker.stop()


def test_sigterm_during_a_job_terminates_it_and_hands_the_message_back(
    bed: BatchBed, queue: str, s3: Any, bucket: str, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(visibility_timeout=60)
    route = batch_route(
        "long",
        bed,
        queue,
        tmp_path / "work",
        command="sleep 99.5",
        output=f"s3://{bucket}/out/",
        route={"prefix": "in/"},
    )
    config = base_config(queues.url, [route], queue={"visibility_timeout": 60}, worker={"shutdown_grace_seconds": 1})
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        message_id = land(s3, queues, bucket, "in/long.bin")
        wait_until(lambda: bed.running(queue), 30, what="the batch job to run")
        worker.signal(signal.SIGTERM)
        assert worker.process.wait(20) == 0
        [job] = bed.jobs(queue)
        assert job["statusReason"] == "watcher: the unit was cancelled (shutdown or timeout)"
        wait_until(lambda: bed.jobs(queue)[0]["status"] == "FAILED", 15, what="the job to end")
        wait_until(lambda: job_containers() == [], 15, what="its container to go")
        assert worker.events("batch job terminated")
        back = wait_until(lambda: queues.receive(wait=1), 5, what="the message to be visible again")
        assert back[0]["MessageId"] == message_id
        assert staged(s3, bucket) == []
    finally:
        worker.stop()


def test_a_worker_starting_after_a_crash_terminates_the_dead_ones_jobs(
    bed: BatchBed, queue: str, s3: Any, bucket: str, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(visibility_timeout=120)
    route = batch_route(
        "long",
        bed,
        queue,
        tmp_path / "work",
        command="sleep 98.5",
        output=f"s3://{bucket}/out/",
        route={"prefix": "in/"},
    )
    config = base_config(queues.url, [route], queue={"visibility_timeout": 120})
    crashed = WatcherProcess(config, tmp_path)
    crashed.wait_started()
    land(s3, queues, bucket, "in/long.bin")
    wait_until(lambda: bed.running(queue), 30, what="the batch job to run")
    crashed.signal(signal.SIGKILL)
    crashed.process.wait(10)
    time.sleep(1)
    assert [job["status"] for job in bed.jobs(queue)] == ["RUNNING"]  # nobody ended it
    successor = WatcherProcess(base_config(queues.url, [route], queue={"visibility_timeout": 120}), tmp_path)
    try:
        successor.wait_started()
        [job] = bed.jobs(queue)
        assert job["statusReason"] == "watcher: the worker that submitted it is gone"
        wait_until(lambda: bed.jobs(queue)[0]["status"] == "FAILED", 15, what="the orphaned job to end")
        assert successor.metric("watcher_container_leftovers_removed_total", {"kind": "batch"}) == 1
        assert staged(s3, bucket) == []  # its staged files went with it
        assert len(area_folders(tmp_path / "work")) == 1  # only the successor's work area
    finally:
        assert successor.stop() == 0


def test_a_job_three_visibility_timeouts_long_stays_in_flight_and_runs_once(
    bed: BatchBed, queue: str, s3: Any, bucket: str, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(visibility_timeout=2)
    route = batch_route(
        "long", bed, queue, tmp_path / "work", command="sleep 7; echo done", output=f"s3://{bucket}/out/"
    )
    route["prefix"] = "in/"
    worker = WatcherProcess(base_config(queues.url, [route], queue={"visibility_timeout": 2}), tmp_path)
    try:
        worker.wait_started()
        land(s3, queues, bucket, "in/long.bin")
        [line] = unit_lines(worker, 1, timeout=40)
        assert line["outcome"] == "ok", line
        time.sleep(3)  # a redelivery would show up as a second unit, and a second job
        assert len(worker.units()) == 1 and len(bed.jobs(queue)) == 1
        assert worker.metric("watcher_sqs_visibility_extensions_total") >= 4
    finally:
        assert worker.stop() == 0
