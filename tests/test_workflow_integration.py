"""The workflow handler end to end: S3 (or a sent notification) -> SQS on LocalStack -> `watcher run`
as a subprocess -> the fake Fire Insights server on 127.0.0.1. Tokens come from the environment,
LocalStack Secrets Manager (rotated while the worker runs) and SSM SecureString; none of them may
appear in anything the process printed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import ENDPOINT, REGION
from tests.support.fire_server import EXECUTE, STATUS, Canned, FireServer
from tests.support.fixtures import s3_event
from tests.support.process import WatcherProcess, base_config, provision_named_queue, wait_until

pytestmark = pytest.mark.integration

TOKEN = "fire-tok-9d2b71c4e5a8"
ENV = {"FIRE_TOKEN": TOKEN}


@pytest.fixture
def fire() -> Iterator[FireServer]:
    with FireServer(TOKEN) as server:
        yield server


def aws(service: str) -> Any:
    return boto3.client(
        service, endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def route(fire: FireServer, token: str = "${env:FIRE_TOKEN}", **extra: Any) -> dict[str, Any]:
    handler = {
        "type": "workflow",
        "url": fire.url + EXECUTE,
        "workflow_id": "42",
        "token": token,
        "timeout_seconds": 5,
        "retry": {"attempts": 5, "max_seconds": 20, "initial_seconds": 0.2},
        **extra.pop("handler", {}),
    }
    return {"name": "fire", "prefix": "events/", "suffix": "_SUCCESS", "handler": handler, **extra}


def marker_event(day: str = "23") -> str:
    return s3_event("lake", f"events/2026/11/{day}/_SUCCESS")


def assert_no_secret(worker: WatcherProcess, *secrets: str) -> None:
    output = worker.output()
    assert output, "the worker printed nothing"
    assert "Unclosed" not in output  # the shared HTTP session is closed with the handlers
    for secret in (TOKEN, *secrets):
        assert secret not in output


def test_a_success_marker_uploaded_to_s3_starts_exactly_one_run(
    s3: Any, sqs: Any, unique: str, tmp_path: Path, fire: FireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRE_TOKEN", TOKEN)  # `watcher provision` loads the config too
    bucket, queue = f"fire-lake-{unique}", f"watcher-fire-{unique}"
    config = base_config("", [route(fire, bucket=bucket)])
    provision_named_queue(config, queue, tmp_path)
    worker = WatcherProcess(config, tmp_path, env=ENV)
    try:
        worker.wait_started()
        s3.put_object(Bucket=bucket, Key="events/2026/11/23/part-0000.csv", Body=b"a,b\n")
        s3.put_object(Bucket=bucket, Key="events/2026/11/23/_SUCCESS", Body=b"")
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") >= 1, 30, what="the marker handled")
        time.sleep(1.5)  # a second POST (the csv, or a duplicate) would have arrived by now
        [call] = fire.calls()
        assert json.loads(call.body) == {
            "workflowId": "42",
            "parameters": f"--var datapath=s3://{bucket}/events/2026/11/23",
        }
        assert call.headers["Authorization"] == f"Bearer {TOKEN}" and call.headers["Idempotency-Key"]
        assert worker.metric("watcher_http_requests_total", {"route": "fire", "status": "200"}) == 1
    finally:
        assert worker.stop() == 0
        for name in (queue, f"{queue}-dlq"):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    assert_no_secret(worker)


def test_two_503s_then_200_start_one_run_and_count_the_retries(
    make_queues: Any, tmp_path: Path, fire: FireServer
) -> None:
    queues = make_queues()
    fire.fail_next(Canned(503, "busy"), Canned(503, "busy"))
    worker = WatcherProcess(base_config(queues.url, [route(fire)]), tmp_path, env=ENV)
    try:
        worker.wait_started()
        queues.send(marker_event())
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") == 1, 20, what="the delete")
        assert [c.status for c in fire.calls()] == [503, 503, 200]
        assert len(fire.runs) == 1
        assert worker.metric("watcher_http_retries_total", {"route": "fire", "reason": "503"}) == 2
        assert worker.metric("watcher_http_requests_total", {"route": "fire", "status": "503"}) == 2
        assert worker.metric("watcher_records_total", {"route": "fire", "outcome": "ok"}) == 1
    finally:
        assert worker.stop() == 0
    assert_no_secret(worker)


def test_a_429_with_retry_after_waits_that_long(make_queues: Any, tmp_path: Path, fire: FireServer) -> None:
    queues = make_queues()
    fire.fail_next(Canned(429, "slow down", {"Retry-After": "2"}))
    worker = WatcherProcess(base_config(queues.url, [route(fire)]), tmp_path, env=ENV)
    try:
        worker.wait_started()
        queues.send(marker_event())
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") == 1, 20, what="the delete")
        first, second = fire.calls()
        assert (first.status, second.status) == (429, 200)
        assert 1.9 <= second.time - first.time < 3.5, second.time - first.time
        assert worker.metric("watcher_http_retries_total", {"route": "fire", "reason": "429"}) == 1
    finally:
        assert worker.stop() == 0
    assert_no_secret(worker)


def test_a_400_goes_to_the_dlq_at_once_with_the_reason(make_queues: Any, tmp_path: Path, fire: FireServer) -> None:
    queues = make_queues(max_receive_count=5)
    fire.fail_next(Canned(400, f"unknown workflow 42 (request had token {TOKEN})"))
    worker = WatcherProcess(base_config(queues.url, [route(fire)]), tmp_path, env=ENV)
    try:
        worker.wait_started()
        queues.send(marker_event())
        dead = wait_until(lambda: queues.receive(queues.dlq_url), 20, what="the message in the DLQ")
        reason = dead[0]["MessageAttributes"]["watcher.error"]["StringValue"]
        assert reason == (
            f"route fire: execute POST {fire.url}{EXECUTE} -> HTTP 400: unknown workflow 42 (request had token ***)"
        )
        assert len(fire.calls()) == 1  # not retried
        assert worker.metric("watcher_sqs_messages_dead_lettered_total") == 1
    finally:
        assert worker.stop() == 0
    assert_no_secret(worker)


def test_a_401_after_the_secret_was_rotated_rereads_it_and_succeeds(
    make_queues: Any, tmp_path: Path, fire: FireServer, unique: str
) -> None:
    secrets = aws("secretsmanager")
    name, old = f"fire/token-{unique}", f"fire-old-{unique}"
    secrets.create_secret(Name=name, SecretString=old)
    queues = make_queues()
    worker = WatcherProcess(base_config(queues.url, [route(fire, f"${{secretsmanager:{name}}}")]), tmp_path)
    try:
        worker.wait_started()
        secrets.put_secret_value(SecretId=name, SecretString=TOKEN)  # rotated: the worker holds the old one
        queues.send(marker_event())
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") == 1, 20, what="the delete")
        assert [c.status for c in fire.calls()] == [401, 200]
        assert fire.calls()[0].headers["Authorization"] == f"Bearer {old}"
        assert worker.metric("watcher_http_retries_total", {"route": "fire", "reason": "auth_refresh"}) == 1
        assert worker.events("token re-read after a 401")[0]["changed"] is True
    finally:
        assert worker.stop() == 0
        secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert_no_secret(worker, old)


def test_polling_to_completed_succeeds_and_to_failed_dead_letters(
    make_queues: Any, tmp_path: Path, fire: FireServer, unique: str
) -> None:
    ssm = aws("ssm")
    parameter = f"/fire/{unique}/token"
    ssm.put_parameter(Name=parameter, Value=TOKEN, Type="SecureString")
    queues = make_queues(max_receive_count=5)
    poll = {"url": fire.url + STATUS, "execution_id": "$body", "interval_seconds": 0.2, "timeout_seconds": 20}
    config = base_config(queues.url, [route(fire, f"${{ssm:{parameter}}}", handler={"poll": poll})])
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        queues.send(marker_event("23"))
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") == 1, 20, what="the first run")
        assert [c.path for c in fire.calls("GET", STATUS)] == [STATUS.format(execution_id="1000")] * 3
        assert worker.events("workflow run finished")[0]["status"] == "COMPLETED"

        fire.final_status = "FAILED"
        queues.send(marker_event("24"))
        dead = wait_until(lambda: queues.receive(queues.dlq_url), 20, what="the failed run in the DLQ")
        reason = dead[0]["MessageAttributes"]["watcher.error"]["StringValue"]
        assert reason == "route fire: workflow run 1001 ended with status FAILED"
        assert len(fire.runs) == 2
    finally:
        assert worker.stop() == 0
        ssm.delete_parameter(Name=parameter)
    assert_no_secret(worker)
