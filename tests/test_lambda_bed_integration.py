"""Real AWS Lambda functions on LocalStack, offline: the test bed of ``tests/support/lambda_bed.py``.

A Python 3.11 handler is zipped on the spot and run by LocalStack in a container of the locally built python3.11
runtime image, where the real AWS runtime interface client (``awslambdaric``) calls it. LocalStack's own init
cannot be fetched offline: a STAND-IN written for these tests (``tests/support/lambda_init_standin.py``) serves
the Runtime API and reports to LocalStack in its place; everything else (event source mapping, batch item
failures, SQS, redrive) is LocalStack's.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import lambda_bed
from tests.support.lambda_bed import HostRecorder, LambdaBed
from tests.support.process import wait_until

pytestmark = pytest.mark.integration
lambda_env = lambda_bed.lambda_env  # session fixtures: the bed (image, registry, LocalStack, init stand-in)
host_recorder = lambda_bed.host_recorder  # an HTTP server on this host that the functions call
functions = lambda_bed.functions  # the names of the functions a test creates, deleted afterwards

# Reports every invocation to the test's HTTP server on the host, copies the bodies it accepts to DONE_QUEUE_URL
# through boto3 (AWS_ENDPOINT_URL, set by LocalStack, points it at LocalStack), lists "fail..." records in
# batchItemFailures, and fails the whole batch when a record says "raise".
BATCH_HANDLER = """
import json, os, urllib.request

import boto3

SQS = boto3.client("sqs")


def handler(event, context):
    records = [
        {"id": r["messageId"], "body": r["body"], "receive_count": int(r["attributes"]["ApproximateReceiveCount"])}
        for r in event["Records"]
    ]
    report = {"request_id": context.aws_request_id, "remaining_ms": context.get_remaining_time_in_millis(),
              "records": records}
    request = urllib.request.Request(os.environ["REPORT_URL"], data=json.dumps(report).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        json.load(answer)
    if any(r["body"] == "raise" for r in records):
        raise RuntimeError("this batch fails as a whole")
    for r in records:
        if not r["body"].startswith("fail"):
            SQS.send_message(QueueUrl=os.environ["DONE_QUEUE_URL"], MessageBody=r["body"])
    return {"batchItemFailures": [{"itemIdentifier": r["id"]} for r in records if r["body"].startswith("fail")]}
"""

# Answers with what a function can see of its context and environment; with a queue URL, checks how a queue URL
# handed out by LocalStack can be used from inside the container.
PROBE_HANDLER = """
import os, socket, sys, time, urllib.parse, urllib.request

import boto3


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    result = {
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_arn": context.invoked_function_arn,
        "uid": os.getuid(),
        "python": "%d.%d" % sys.version_info[:2],
        "timeout_env": os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT"),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "internal_env": sorted(k for k in os.environ if k.startswith("LOCALSTACK_RUNTIME")),
    }
    queue_url = event.get("queue_url")
    if queue_url:
        parts = urllib.parse.urlsplit(queue_url)
        try:
            socket.getaddrinfo(parts.hostname, parts.port)
            result["queue_host_resolves"] = True
        except socket.gaierror:
            result["queue_host_resolves"] = False
        sqs = boto3.client("sqs")
        sqs.send_message(QueueUrl=queue_url, MessageBody="through boto3")
        rebuilt = os.environ["AWS_ENDPOINT_URL"] + parts.path
        form = urllib.parse.urlencode({"Action": "SendMessage", "MessageBody": "through plain HTTP"}).encode()
        with urllib.request.urlopen(urllib.request.Request(rebuilt, data=form), timeout=5) as answer:
            result["plain_http_status"] = answer.status
        result["rebuilt_url"] = rebuilt
    return result
"""


class Queues:
    """A source queue whose DLQ takes a message after two deliveries, and a queue the function writes to."""

    def __init__(self, sqs: Any, name: str) -> None:
        self.sqs = sqs
        self.dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        redrive = {"deadLetterTargetArn": self.arn(self.dlq), "maxReceiveCount": 2}
        attributes = {"VisibilityTimeout": "2", "RedrivePolicy": json.dumps(redrive)}
        self.source = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.done = sqs.create_queue(QueueName=f"{name}-done")["QueueUrl"]

    def arn(self, url: str) -> str:
        return str(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def send(self, bodies: list[str]) -> dict[str, str]:
        """Sent together, before the mapping exists, so that they arrive in one batch: message id -> body."""
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        sent = self.sqs.send_message_batch(QueueUrl=self.source, Entries=entries)["Successful"]
        return {item["MessageId"]: bodies[int(item["Id"])] for item in sent}

    def drain(self, url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        ):
            messages += batch
        return messages

    def count(self, url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes[name]) for name in names)

    def delete(self) -> None:
        for url in (self.source, self.dlq, self.done):
            self.sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def name() -> str:
    return f"watcher-lambda-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def queues(lambda_env: LambdaBed, name: str) -> Iterator[Queues]:
    made = Queues(lambda_env.client("sqs"), name)
    yield made
    made.delete()


def run_batch_function(bed: LambdaBed, recorder: HostRecorder, queues: Queues, name: str) -> None:
    """The batch handler, attached to the source queue: batch size 10, ReportBatchItemFailures."""
    environment = {"REPORT_URL": recorder.url, "DONE_QUEUE_URL": queues.done}
    bed.create_function(name, BATCH_HANDLER, timeout=10, environment=environment)
    bed.client("lambda").create_event_source_mapping(
        FunctionName=name,
        EventSourceArn=queues.arn(queues.source),
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )


def deliveries(recorder: HostRecorder, ids: dict[str, str]) -> dict[str, list[int]]:
    """For each of our messages, the receive counts it had in the invocations the handler reported."""
    seen: dict[str, list[int]] = {message_id: [] for message_id in ids}
    for report in recorder.received():
        for record in report["records"]:
            if record["id"] in seen:
                seen[record["id"]].append(record["receive_count"])
    return {message_id: sorted(counts) for message_id, counts in seen.items()}


def test_records_in_batch_item_failures_stay_on_the_queue_and_the_others_are_deleted(
    lambda_env: LambdaBed, host_recorder: HostRecorder, queues: Queues, functions: list[str], name: str
) -> None:
    ids = queues.send(["ok-1", "fail-1", "ok-2", "ok-3", "fail-2", "ok-4"])
    failing = {message_id for message_id, body in ids.items() if body.startswith("fail")}
    functions.append(name)
    run_batch_function(lambda_env, host_recorder, queues, name)

    # Listed twice as failures, the failing records reach the DLQ on their third receive.
    wait_until(lambda: queues.count(queues.dlq) == len(failing), 90, 0.5, "the failing records in the DLQ")

    seen = deliveries(host_recorder, ids)
    assert {i: c for i, c in seen.items() if i in failing} == {i: [1, 2] for i in failing}  # stayed, came back
    assert {i: c for i, c in seen.items() if i not in failing} == {i: [1] for i in ids if i not in failing}  # deleted
    first = next(r for r in host_recorder.received() if any(record["id"] in ids for record in r["records"]))
    assert {record["id"] for record in first["records"]} == set(ids)  # one batch of six
    assert 0 < first["remaining_ms"] <= 10_000
    assert {m["MessageId"] for m in queues.drain(queues.dlq)} == failing
    assert queues.count(queues.source) == 0
    # The function wrote to SQS itself (through AWS_ENDPOINT_URL) for each record it accepted, once.
    assert sorted(m["Body"] for m in queues.drain(queues.done)) == ["ok-1", "ok-2", "ok-3", "ok-4"]


def test_a_handler_that_raises_leaves_every_record_of_the_batch_on_the_queue(
    lambda_env: LambdaBed, host_recorder: HostRecorder, queues: Queues, functions: list[str], name: str
) -> None:
    ids = queues.send(["ok-1", "raise", "ok-2", "fail-1"])
    functions.append(name)
    run_batch_function(lambda_env, host_recorder, queues, name)

    wait_until(lambda: queues.count(queues.dlq) == len(ids), 90, 0.5, "the whole batch in the DLQ")

    assert deliveries(host_recorder, ids) == {message_id: [1, 2] for message_id in ids}
    assert {m["MessageId"] for m in queues.drain(queues.dlq)} == set(ids)
    assert queues.count(queues.source) == 0
    assert queues.drain(queues.done) == []  # it raised before writing anything


def test_a_function_sees_its_context_and_reaches_sqs_through_aws_endpoint_url(
    lambda_env: LambdaBed, queues: Queues, functions: list[str], name: str
) -> None:
    functions.append(name)
    arn = lambda_env.create_function(name, PROBE_HANDLER, timeout=7)
    client = lambda_env.client("lambda")

    started = time.monotonic()
    response = client.invoke(FunctionName=name, Payload=json.dumps({"queue_url": queues.done}).encode())
    lambda_env.timings["cold start"] = time.monotonic() - started
    result = json.loads(response["Payload"].read())

    assert "FunctionError" not in response, result
    assert result["python"] == "3.11"
    assert result["function_arn"] == arn
    assert 0 < result["remaining_ms"] <= 7000
    assert result["timeout_env"] == "7"
    assert result["uid"] != 0  # the runtime runs unprivileged, as on AWS
    assert result["internal_env"] == []  # LocalStack's runtime id and endpoint stay with the init
    assert result["endpoint"] == lambda_env.container_endpoint
    # LocalStack's queue URLs name *.localhost.localstack.cloud, which the container cannot resolve; boto3 does not
    # need to (it sends to AWS_ENDPOINT_URL with the URL as a parameter), and for plain HTTP the URL's path on
    # AWS_ENDPOINT_URL is the same queue.
    assert ".localhost.localstack.cloud" in queues.done
    assert result["queue_host_resolves"] is False
    assert result["plain_http_status"] == 200
    assert sorted(m["Body"] for m in queues.drain(queues.done)) == ["through boto3", "through plain HTTP"]

    warm = client.invoke(FunctionName=name, Payload=b"{}")
    assert json.loads(warm["Payload"].read())["request_id"] != result["request_id"]


def test_the_init_stand_in_ends_an_invocation_at_the_function_timeout_and_starts_the_runtime_again(
    lambda_env: LambdaBed, functions: list[str], name: str
) -> None:
    functions.append(name)
    lambda_env.create_function(name, PROBE_HANDLER, timeout=1)
    client = lambda_env.client("lambda")

    started = time.monotonic()
    late = client.invoke(FunctionName=name, Payload=json.dumps({"sleep": 5}).encode())
    took = time.monotonic() - started

    assert late["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in json.loads(late["Payload"].read())["errorMessage"]
    assert took < 4  # not the five seconds the handler asked for
    again = client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in again
    assert 0 < json.loads(again["Payload"].read())["remaining_ms"] <= 1000
