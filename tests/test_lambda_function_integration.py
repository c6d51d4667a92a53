"""The zip `watcher package lambda` builds, run as a real Lambda function: LocalStack creates it from the zip and
runs it on the python3.11 runtime of the Lambda test bed (tests/support/lambda_bed.py: the AWS runtime interface
client calls the handler; LocalStack's init is a STAND-IN written for these tests), attached to an SQS queue by a
real event source mapping with ReportBatchItemFailures; S3 notifies the queue.

End to end: S3 uploads reach the function through the mapping; in one batch, a record whose handler fails
permanently lands in the DLQ with its attributes while its batch-mates are deleted, a retryable one stays on the
queue and succeeds on a later delivery, a workflow route calls a Fire-Insights-like server on this host; the
function's log lines carry the Lambda request id and its EMF documents reach CloudWatch Logs. The package itself:
what it holds, for x86_64 and arm64. The figures (sizes, cold start, first invocation) are printed (pytest -s)."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import lambda_bed, lambda_package
from tests.support.fire_server import FireServer
from tests.support.fixtures import s3_event
from tests.support.lambda_bed import ROLE, LambdaBed
from tests.support.lambda_events import batch
from tests.support.lambda_package import CONFIG, HANDLER, LOG_ONLY, Built, package
from tests.support.process import wait_until

pytestmark = pytest.mark.integration
lambda_env = lambda_bed.lambda_env  # the session's bed: runtime image, registry, LocalStack, init stand-in
functions = lambda_bed.functions  # the names of the functions a test creates, deleted afterwards

TOKEN = "fire-lambda-tok-5c1e9a"
built = lambda_package.built  # the zip of `watcher package lambda`, once per session


def elf_machines(path: Path) -> set[int]:
    """The ELF e_machine of every shared library in a zip (62: x86-64, 183: AArch64)."""
    machines = set()
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(".so") or ".so." in name:
                header = archive.read(name)[:20]
                assert header[:4] == b"\x7fELF", name
                machines.add(int.from_bytes(header[18:20], "little"))
    return machines


def test_the_package_holds_watcher_its_config_the_routes_code_and_wheels_for_the_runtime(built: Built) -> None:
    names = set(built.names())
    assert {"watcher/lambda_/handler.py", "watcher.yaml", "lambda_routes.py", "log-only.yaml"} <= names
    assert "watcher/lambda_/__pycache__/handler.cpython-311.pyc" in names  # compiled: the code folder is read-only
    tops = {name.split("/", 1)[0] for name in names}
    assert {"structlog", "prometheus_client", "yaml", "orjson", "aiohttp", "tenacity"} <= tops  # workflow: aiohttp
    assert not {"boto3", "botocore", "docker", "aiobotocore", "bin"} & tops  # the runtime's boto3; no CLI scripts
    assert elf_machines(built.path) == {62}
    with zipfile.ZipFile(built.path) as archive:
        assert yaml.safe_load(archive.read("watcher.yaml")) == CONFIG  # references kept for the cold start
        assert all((info.external_attr >> 16) & 0o444 == 0o444 for info in archive.infolist())  # readable by all
    assert re.search(r"wrote .*watcher-lambda\.zip: [\d.]+ MiB zipped, [\d.]+ MiB unpacked", built.report)


def test_an_arm64_package_carries_aarch64_wheels(tmp_path: Path) -> None:
    arm = package(tmp_path, LOG_ONLY, "--arch", "arm64")
    assert elf_machines(arm.path) == {183}
    assert "(python3.11, arm64)" in arm.report
    assert "aiohttp" not in {name.split("/", 1)[0] for name in arm.names()}  # a log route does not need it


# ---- on the Lambda runtime ---------------------------------------------------------------------------------


def create_function(bed: LambdaBed, name: str, built: Built, environment: dict[str, str]) -> None:
    client = bed.client("lambda")
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Handler=HANDLER,
        Role=ROLE,
        Code={"ZipFile": built.path.read_bytes()},
        Timeout=10,
        MemorySize=512,
        Environment={"Variables": environment},
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def log_lines(bed: LambdaBed, function: str) -> list[str]:
    logs = bed.client("logs")
    lines: list[str] = []
    try:
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=f"/aws/lambda/{function}"):
            lines += [event["message"].rstrip("\n") for event in page["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return lines


def json_lines(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def figures(tail: str) -> dict[str, float]:
    """Duration and Init Duration (ms) from a REPORT line."""
    return {k: float(v) for k, v in re.findall(r"(Init Duration|Duration): ([\d.]+) ms", tail)}


def test_cold_start_and_first_invocation(lambda_env: LambdaBed, built: Built, functions: list[str]) -> None:
    # One record for the log route, which the other configuration skips (no route): nothing to send to SQS.
    event = json.dumps(batch([s3_event("lake", "events/2026/11/30/report.csv")])).encode()
    client = lambda_env.client("lambda")
    results = {}
    for label, environment in (
        ("log route", {"WATCHER_CONFIG": "log-only.yaml"}),
        ("python and workflow routes", {"DONE_QUEUE_URL": "x", "FIRE_URL": "http://x", "FIRE_TOKEN": "t"}),
    ):
        name = f"watcher-cold-{uuid.uuid4().hex[:8]}"
        functions.append(name)
        create_function(lambda_env, name, built, {**environment, "WATCHER_LOGGING_LEVEL": "debug"})
        runs = []
        for _ in range(2):
            began = time.monotonic()
            answer = client.invoke(FunctionName=name, Payload=event, LogType="Tail")
            wall = time.monotonic() - began
            payload = json.loads(answer["Payload"].read())
            assert "FunctionError" not in answer, payload
            assert payload == {"batchItemFailures": []}
            tail = base64.b64decode(answer["LogResult"]).decode()
            runs.append((wall, figures(tail), tail))

        # Our lines from CloudWatch Logs, not from the 4 KB tail: at debug level the tail can start after
        # them, and LocalStack may answer before the last line reached the tail.
        def ours_logged(name: str = name) -> list[dict[str, Any]] | None:
            lines = json_lines(log_lines(lambda_env, name))
            done = sorted((line for line in lines if line.get("event") == "batch done"), key=lambda x: x["timestamp"])
            ready = [line for line in lines if line.get("event") == "watcher ready"]
            return ready + done if len(done) == 2 and len(ready) == 1 else None

        ready, *done = wait_until(ours_logged, 30, 0.5, "both invocations' lines in CloudWatch Logs")
        ours = [line["duration_ms"] for line in done]
        results[label] = (ready["init_ms"], runs, ours)
    for label, (init_ms, runs, ours) in results.items():
        (cold_wall, cold, _), (_, warm, _) = runs
        print(
            f"\n[lambda {label}] watcher init {init_ms:.0f} ms (runtime's Init Duration {cold['Init Duration']:.0f} "
            f"ms); first invocation {ours[0]:.1f} ms in the shim ({cold['Duration']:.1f} ms reported), second "
            f"{ours[1]:.1f} ms ({warm['Duration']:.1f} ms); cold invoke round trip {cold_wall * 1000:.0f} ms"
        )
    assert "Init Duration" not in results["log route"][1][1][2]  # the second invocation was warm


def test_a_configuration_lambda_cannot_run_fails_the_cold_start_naming_the_route(
    lambda_env: LambdaBed, built: Built, functions: list[str]
) -> None:
    name = f"watcher-refused-{uuid.uuid4().hex[:8]}"
    functions.append(name)
    create_function(lambda_env, name, built, {"WATCHER_CONFIG": "not-for-lambda.yaml"})
    answer = lambda_env.client("lambda").invoke(FunctionName=name, Payload=json.dumps(batch([])).encode())
    error = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") == "Unhandled", error
    # The init phase failed (the handler's module makes the cold-start state when the runtime imports it).
    assert error["errorType"] == "ConfigError"
    problem = "routes[1] (frames).handler.runtime: a container route with runtime docker needs a Docker engine"
    assert problem in error["errorMessage"]


@pytest.fixture
def fire(lambda_env: LambdaBed) -> Iterator[FireServer]:
    server = FireServer(TOKEN, host=lambda_env.bridge)  # where the function's container reaches this host
    server.running_polls = 0
    with server:
        yield server


@dataclass
class Wiring:
    """A bucket notifying a queue (DLQ after 3 receives), and the queue the routes report to."""

    bed: LambdaBed
    bucket: str
    queue: str
    queue_arn: str
    dlq: str
    done: str

    def count(self, url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.bed.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes[name]) for name in names)

    def take(self, url: str) -> list[dict[str, Any]]:
        sqs = self.bed.client("sqs")
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"]
        )
        for message in answer.get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return list(answer.get("Messages", []))


@pytest.fixture
def wiring(lambda_env: LambdaBed) -> Iterator[Wiring]:
    sqs, s3 = lambda_env.client("sqs"), lambda_env.client("s3")
    name = f"watcher-fn-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    # AWS's advice: a visibility timeout of at least six times the function's timeout (10 s).
    queue = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    done = sqs.create_queue(QueueName=f"{name}-done")["QueueUrl"]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    yield Wiring(lambda_env, name, queue, queue_arn, dlq, done)
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)
    for url in (queue, dlq, done):
        sqs.delete_queue(QueueUrl=url)


def test_s3_uploads_reach_the_function_through_the_mapping_and_each_record_gets_its_fate(
    lambda_env: LambdaBed, built: Built, functions: list[str], wiring: Wiring, fire: FireServer
) -> None:
    name = f"watcher-fn-{uuid.uuid4().hex[:8]}"
    functions.append(name)
    create_function(lambda_env, name, built, {"DONE_QUEUE_URL": wiring.done, "FIRE_URL": fire.url, "FIRE_TOKEN": TOKEN})
    s3 = lambda_env.client("s3")
    keys = ["good/a.csv", "bad/b.csv", "flaky/c.csv", "events/2026/11/30/_SUCCESS"]
    for key in keys:
        s3.put_object(Bucket=wiring.bucket, Key=key, Body=b"x")
    # All notifications queued before the mapping exists, so that they arrive in one batch: the four, and the
    # s3:TestEvent S3 sent when the notification was configured (skipped by the shim, deleted).
    wait_until(lambda: wiring.count(wiring.queue) == len(keys) + 1, 30, 0.2, "the five notifications queued")
    began = time.monotonic()
    lambda_env.client("lambda").create_event_source_mapping(
        FunctionName=name,
        EventSourceArn=wiring.queue_arn,
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )

    # good (first delivery) and flaky (second delivery, after the backoff) report to the done queue.
    reports: list[dict[str, Any]] = []
    wait_until(
        lambda: reports.extend(json.loads(m["Body"]) for m in wiring.take(wiring.done)) or len(reports) >= 2,
        90,
        0.5,
        "two reports",
    )
    took = time.monotonic() - began
    wait_until(lambda: wiring.count(wiring.queue) == 0, 30, 0.5, "the queue emptied")
    by_route = {report["route"]: report for report in reports}
    assert sorted(by_route) == ["flaky", "good"]
    assert (by_route["good"]["key"], by_route["good"]["receive_count"]) == ("good/a.csv", 1)
    assert (by_route["flaky"]["key"], by_route["flaky"]["receive_count"]) == ("flaky/c.csv", 2)
    assert by_route["good"]["dataset_uri"] == f"s3://{wiring.bucket}/good/a.csv"

    # The permanent failure: in the DLQ at once (receive count 1), with the worker's attributes.
    (dead,) = wiring.take(wiring.dlq)
    assert json.loads(dead["Body"])["Records"][0]["s3"]["object"]["key"] == "bad/b.csv"
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes == {
        "watcher.error": "route bad: cannot read bad/b.csv (test)",
        "watcher.route": "bad",
        "watcher.receive_count": "1",
    }

    # The workflow route called the server on this host from inside the function, once, with the token.
    (call,) = fire.calls()
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(call.body) == {
        "workflowId": "42",
        "parameters": f"--var datapath=s3://{wiring.bucket}/events/2026/11/30",
    }

    # The function's lines: the first batch held all four records (one request id), each record one line.
    lines = json_lines(wait_until(lambda: log_lines(lambda_env, name), 30, 0.5, "the function's logs"))
    summaries = [
        line
        for line in lines
        if line.get("event") in ("message done", "message dead-lettered", "message will be retried")
    ]
    first_batch = {line["aws_request_id"] for line in summaries if line["receive_count"] == 1}
    assert len(first_batch) == 1
    fates = sorted((line.get("route", "-"), line["event"], line["receive_count"]) for line in summaries)
    assert fates == [
        ("-", "message done", 1),  # the s3:TestEvent
        ("bad", "message dead-lettered", 1),
        ("fire", "message done", 1),
        ("flaky", "message done", 2),
        ("flaky", "message will be retried", 1),
        ("good", "message done", 1),
    ]
    retried = next(line for line in summaries if line["event"] == "message will be retried")
    assert retried["retry_in_seconds"] in (1, 2) and retried["attempts_left"] == 2
    emf = [line for line in lines if "_aws" in line]
    counted = [doc for doc in emf if doc.get("route") == "good" and "watcher_records_total" in doc]
    assert counted and counted[0]["outcome"] == "ok" and counted[0]["watcher_records_total"] == 1
    assert TOKEN not in "\n".join(log_lines(lambda_env, name))
    print(f"\n[lambda end to end] uploads -> both reports in {took:.1f} s (backoff 1-2 s included)")
