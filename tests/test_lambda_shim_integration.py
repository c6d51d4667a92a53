"""The Lambda shim in this process against a real SQS (LocalStack): messages really received, put in the shape
Lambda's poller gives them (tests/support/lambda_events.from_received), handed to the entry point; the test then
does what Lambda does with the answer (deletes the records not listed). A permanent failure goes to the DLQ with
the worker's attributes, a retryable one comes back after the worker's backoff, records never started come back
at once, a FIFO batch stops at its first failure; the configuration may come from SSM. The packaged function on
a real Lambda runtime is tests/test_lambda_function_integration.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ENDPOINT, Queues
from tests.support.fixtures import s3_event
from tests.support.lambda_events import Context, failures, from_received, make_shim, write_config
from tests.support.process import REPO, wait_until
from watcher.lambda_.shim import Shim

pytestmark = pytest.mark.integration
ROUTES = "tests.support.lambda_routes"


def routes(done_url: str) -> list[dict[str, Any]]:
    report = {"queue_url": done_url, "endpoint_url": ENDPOINT}
    return [
        {
            "name": "good",
            "prefix": "good/",
            "handler": {"type": "python", "function": f"{ROUTES}:report", "options": report},
        },
        {"name": "bad", "prefix": "bad/", "handler": {"type": "python", "function": f"{ROUTES}:fail_permanently"}},
        {
            "name": "flaky",
            "prefix": "flaky/",
            "handler": {"type": "python", "function": f"{ROUTES}:fail_first_delivery", "options": report},
        },
        {
            "name": "slow",
            "prefix": "slow/",
            "handler": {"type": "python", "function": f"{ROUTES}:sleep", "options": {"seconds": 30}},
        },
    ]


SECTIONS = {
    "aws": {"endpoint_url": ENDPOINT, "region": "us-east-1"},
    "worker": {"retry_initial_seconds": 2, "retry_max_seconds": 2},  # backoff: 1 or 2 s
}


@pytest.fixture
def done(sqs: Any, unique: str) -> Iterator[str]:
    url = str(sqs.create_queue(QueueName=f"watcher-lambda-done-{unique}")["QueueUrl"])
    yield url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def shim(tmp_path: Path, done: str) -> Iterator[Shim]:
    made = make_shim(write_config(tmp_path / "watcher.yaml", routes(done), **SECTIONS))
    yield made
    made.close()


def receive(sqs: Any, url: str, expected: int) -> list[dict[str, Any]]:
    """Receive until ``expected`` messages are in hand (visibility 30 s), as Lambda's poller would."""
    messages: list[dict[str, Any]] = []

    def more() -> bool:
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=30,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages.extend(answer.get("Messages", []))
        return len(messages) >= expected

    wait_until(more, 20, 0, f"{expected} messages")
    return messages


def act_as_lambda(queues: Queues, messages: list[dict[str, Any]], response: dict[str, Any]) -> None:
    """What Lambda does once the function returned: delete every record not listed."""
    listed = set(failures(response))
    for message in messages:
        if message["MessageId"] not in listed:
            queues.sqs.delete_message(QueueUrl=queues.url, ReceiptHandle=message["ReceiptHandle"])


def reports(sqs: Any, url: str, expected: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def more() -> bool:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(found) >= expected

    wait_until(more, 20, 0, f"{expected} reports")
    return found


def by_key(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"]: m for m in messages}


def test_permanent_to_the_dlq_with_its_attributes_retryable_backed_off_the_rest_deleted(
    shim: Shim, make_queues: Any, done: str, sqs: Any
) -> None:
    queues = make_queues(visibility_timeout=30)
    own = {
        "origin": {"DataType": "String", "StringValue": "scanner-7"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
    }
    for key in ("good/1.csv", "bad/2.csv", "flaky/3.csv"):
        sqs.send_message(QueueUrl=queues.url, MessageBody=s3_event("lake", key), MessageAttributes=own)
    messages = by_key(receive(sqs, queues.url, 3))
    event = from_received(list(messages.values()), queues.arn(queues.url))

    response = shim.invoke(event, Context(30))
    act_as_lambda(queues, list(messages.values()), response)

    assert failures(response) == [messages["flaky/3.csv"]["MessageId"]]
    (dead,) = queues.receive(queues.dlq_url)
    assert dead["MessageId"] != messages["bad/2.csv"]["MessageId"] and dead["Body"] == messages["bad/2.csv"]["Body"]
    attributes = {
        name: value.get("StringValue", value.get("BinaryValue")) for name, value in dead["MessageAttributes"].items()
    }
    assert attributes == {
        "watcher.error": "route bad: cannot read bad/2.csv (test)",
        "watcher.route": "bad",
        "watcher.receive_count": "1",
        "origin": "scanner-7",
        "blob": b"\x01\x02",
    }
    assert [r["key"] for r in reports(sqs, done, 1)] == ["good/1.csv"]

    # The retryable record is invisible for the backoff (1-2 s), not for the 30 s it was received with.
    assert queues.receive(wait=0) == []
    began = time.monotonic()
    (again,) = receive(sqs, queues.url, 1)
    assert time.monotonic() - began < 5
    assert again["MessageId"] == messages["flaky/3.csv"]["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    response = shim.invoke(from_received([again], queues.arn(queues.url)), Context(30))
    act_as_lambda(queues, [again], response)
    assert failures(response) == []
    (report,) = reports(sqs, done, 1)
    assert (report["key"], report["receive_count"]) == ("flaky/3.csv", 2)
    assert queues.empty()


def test_records_not_started_in_time_come_back_at_once_and_the_one_given_up_after_its_backoff(
    tmp_path: Path, make_queues: Any, done: str, sqs: Any
) -> None:
    shim = make_shim(write_config(tmp_path / "w.yaml", routes(done), lambda_={"max_concurrency": 1}, **SECTIONS))
    queues = make_queues(visibility_timeout=30)
    for key in ("slow/1", "good/2", "good/3"):
        sqs.send_message(QueueUrl=queues.url, MessageBody=s3_event("lake", key))
    messages = by_key(receive(sqs, queues.url, 3))
    ordered = [messages[k] for k in ("slow/1", "good/2", "good/3")]

    began = time.monotonic()
    response = shim.invoke(from_received(ordered, queues.arn(queues.url)), Context(3))  # reserve: 1 s
    took = time.monotonic() - began
    shim.close()

    assert took < 3  # returned before the function's time was up
    assert failures(response) == [m["MessageId"] for m in ordered]
    handed_back = receive(sqs, queues.url, 2)  # visible again at once
    assert {m["MessageId"] for m in handed_back} == {ordered[1]["MessageId"], ordered[2]["MessageId"]}
    (given_up,) = receive(sqs, queues.url, 1)  # after the backoff
    assert given_up["MessageId"] == ordered[0]["MessageId"]


def test_a_fifo_batch_stops_at_its_first_failure_and_dead_letters_with_the_message_group(
    shim: Shim, sqs: Any, unique: str
) -> None:
    dlq = sqs.create_queue(QueueName=f"watcher-lambda-{unique}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
    attributes = {"FifoQueue": "true", "VisibilityTimeout": "30", "RedrivePolicy": redrive}
    url = sqs.create_queue(QueueName=f"watcher-lambda-{unique}.fifo", Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    try:
        for index, key in enumerate(("good/1", "bad/2", "good/3", "good/4")):
            sqs.send_message(
                QueueUrl=url, MessageBody=s3_event("lake", key), MessageGroupId="g1", MessageDeduplicationId=str(index)
            )
        messages = receive(sqs, url, 4)
        keys = [json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"] for m in messages]
        assert keys == ["good/1", "bad/2", "good/3", "good/4"]  # FIFO order

        response = shim.invoke(from_received(messages, arn), Context(30))

        assert failures(response) == [m["MessageId"] for m in messages[2:]]  # bad/2 dead-lettered, not listed
        (dead,) = receive(sqs, dlq, 1)
        assert dead["Body"] == messages[1]["Body"]
        assert dead["MessageAttributes"]["watcher.route"]["StringValue"] == "bad"
        assert dead["Attributes"]["MessageGroupId"] == "g1"  # a FIFO DLQ needs the group
        assert dead["Attributes"]["MessageDeduplicationId"] == messages[1]["MessageId"]
        # good/3 and good/4 were handed back: visible again at once, in order
        again = receive(sqs, url, 2)
        assert [m["MessageId"] for m in again] == [m["MessageId"] for m in messages[2:]]
    finally:
        sqs.delete_queue(QueueUrl=url)
        sqs.delete_queue(QueueUrl=dlq)


def test_the_configuration_can_live_in_an_ssm_parameter(tmp_path: Path, localstack_endpoint: str) -> None:
    ssm = __import__("boto3").client(
        "ssm", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    name = f"/watcher-test/{uuid.uuid4().hex[:8]}/config"
    document = {
        "lambda": {"max_concurrency": 3},
        "queue": {"name": "watcher-events"},
        "routes": [{"name": "events", "prefix": "e/", "handler": {"type": "log"}}],
    }
    ssm.put_parameter(Name=name, Value=yaml.safe_dump(document), Type="SecureString")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"Records": []}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    env.update(
        WATCHER_CONFIG=f"ssm:{name}",
        WATCHER_AWS_ENDPOINT_URL=ENDPOINT,  # the function's own AWS_ENDPOINT_URL, on LocalStack
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        WATCHER_LAMBDA_MAX_CONCURRENCY="5",
    )
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tests.support.lambda_local", str(event)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        ssm.delete_parameter(Name=name)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    ready = next(line for line in lines if line.get("event") == "watcher ready")
    assert ready["config"] == f"ssm:{name}" and ready["routes"] == ["events"] and ready["max_concurrency"] == 5
    assert {"response": {"batchItemFailures": []}} in lines
