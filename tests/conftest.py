"""Shared fixtures. Integration tests talk to a real LocalStack on 127.0.0.1:4566: the session uses
one already answering there, or starts the embedded one (`watcher local up`) and stops it after."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.containers import RUNTIMES, Jobs, areas_in, containers_of
from tests.support.process import wait_until
from watcher.local import dynamodb, localstack

ENDPOINT = localstack.ENDPOINT
REGION = "us-east-1"


@pytest.fixture(scope="session")
def localstack_endpoint() -> Iterator[str]:
    started = localstack.up()
    yield ENDPOINT
    if started:
        localstack.down()


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """DynamoDB Local on 127.0.0.1:8642 (`watcher local up --dynamodb`), started when absent."""
    started = dynamodb.up()
    yield dynamodb.ENDPOINT
    if started:
        dynamodb.down()


def _client(service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def sqs(localstack_endpoint: str) -> Any:
    return _client("sqs")


@pytest.fixture
def s3(localstack_endpoint: str) -> Any:
    return _client("s3")


@pytest.fixture
def sns(localstack_endpoint: str) -> Any:
    return _client("sns")


@pytest.fixture
def events(localstack_endpoint: str) -> Any:
    return _client("events")


@pytest.fixture
def unique() -> str:
    """A short unique suffix: every test gets its own queues and buckets on the shared LocalStack."""
    return uuid.uuid4().hex[:10]


class Queues:
    """A source queue with a DLQ wired through a RedrivePolicy, as `watcher provision` makes them."""

    def __init__(self, sqs: Any, name: str, visibility_timeout: int, max_receive_count: int) -> None:
        self.sqs = sqs
        self.dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = self.arn(self.dlq_url)
        self.url = sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": str(visibility_timeout),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
            },
        )["QueueUrl"]
        self.name = name

    @classmethod
    def existing(cls, sqs: Any, name: str) -> Queues:
        """Queues made elsewhere (by `watcher provision`): the source and its ``-dlq``."""
        queues = cls.__new__(cls)
        queues.sqs, queues.name = sqs, name
        queues.url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        queues.dlq_url = sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
        return queues

    def arn(self, url: str) -> str:
        return str(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def send(self, body: str) -> str:
        return str(self.sqs.send_message(QueueUrl=self.url, MessageBody=body)["MessageId"])

    def receive(self, url: str | None = None, wait: int = 1, visibility: int | None = None) -> list[dict[str, Any]]:
        extra = {"VisibilityTimeout": visibility} if visibility is not None else {}
        response = self.sqs.receive_message(
            QueueUrl=url or self.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
            **extra,
        )
        return list(response.get("Messages", []))

    def wait_for_dead_letters(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """The distinct messages in the DLQ once there are at least ``count`` (each received, kept
        invisible)."""
        collected: dict[str, dict[str, Any]] = {}

        def enough() -> list[dict[str, Any]] | None:
            collected.update((m["MessageId"], m) for m in self.receive(self.dlq_url, visibility=60))
            return list(collected.values()) if len(collected) >= count else None

        return list(wait_until(enough, timeout, what=f"{count} message(s) in the DLQ"))

    def depth(self, url: str | None = None) -> dict[str, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {
            "visible": int(attributes["ApproximateNumberOfMessages"]),
            "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        }

    def empty(self, url: str | None = None) -> bool:
        """Nothing visible and nothing in flight, read twice 0.2 s apart: LocalStack moves a message
        between the two in two steps and counts them without the queue's lock, so one read in between
        sees 0 and 0 (it happened once in CI, while a retried message's visibility changed)."""
        if self.depth(url) != {"visible": 0, "in_flight": 0}:
            return False
        time.sleep(0.2)
        return self.depth(url) == {"visible": 0, "in_flight": 0}

    def delete(self) -> None:
        for url in (self.url, self.dlq_url):
            self.sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def make_queues(sqs: Any, unique: str) -> Iterator[Any]:
    made: list[Queues] = []

    def make(visibility_timeout: int = 30, max_receive_count: int = 5, name: str | None = None) -> Queues:
        queues = Queues(sqs, name or f"watcher-test-{unique}-{len(made)}", visibility_timeout, max_receive_count)
        made.append(queues)
        return queues

    yield make
    for queues in made:
        queues.delete()


def _jobs(runtime: str, s3: Any, unique: str, tmp_path: Path) -> Iterator[Jobs]:
    work_dir = tmp_path / "work"
    bucket = f"jobs-{unique}"
    s3.create_bucket(Bucket=bucket)
    yield Jobs(runtime, work_dir, bucket)
    assert containers_of(work_dir) == []
    assert areas_in(work_dir) == []


@pytest.fixture(params=RUNTIMES)
def jobs(request: pytest.FixtureRequest, s3: Any, unique: str, tmp_path: Path) -> Iterator[Jobs]:
    """A container-handler test, once per runtime (docker, process). Whatever happened in the test,
    no container and no work directory may be left behind afterwards."""
    yield from _jobs(str(request.param), s3, unique, tmp_path)


@pytest.fixture
def docker_jobs(s3: Any, unique: str, tmp_path: Path) -> Iterator[Jobs]:
    """The same, for what only the Docker runtime has (limits, lockdown, OOM)."""
    yield from _jobs("docker", s3, unique, tmp_path)
