"""Lambda SQS events for the shim's tests, made from real payloads: the AWS documentation's sample events
(tests/fixtures/lambda_sqs_event_*aws_sample.json), whose records are the template of a batch, or messages
really received from SQS (LocalStack), put in the shape Lambda's event source mapping gives them.

``Context`` (from lambda_local) stands in for the context object of the Lambda runtime in the tests that call
the shim in this process.
"""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support.fixtures import load_fixture_json
from tests.support.lambda_local import Context
from watcher.app import load_config
from watcher.lambda_.shim import Shim

__all__ = ["Context", "batch", "emf_documents", "failures", "from_received", "ids", "make_shim", "write_config"]

STANDARD_SAMPLE = "lambda_sqs_event_aws_sample"
FIFO_SAMPLE = "lambda_sqs_event_fifo_aws_sample"


def batch(bodies: Sequence[str], *, sample: str = STANDARD_SAMPLE, **overrides: Any) -> dict[str, Any]:
    """An event of ``len(bodies)`` records shaped like the sample's first record, each with its own message id,
    receipt handle and body (``overrides`` replace top-level fields of every record, e.g. ``eventSourceARN``)."""
    template = load_fixture_json(sample)["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record.update(messageId=str(uuid.uuid4()), receiptHandle=f"{template['receiptHandle']}{index}", body=body)
        record["attributes"]["SentTimestamp"] = str(int(time.time() * 1000))
        record.update(overrides)
        records.append(record)
    return {"Records": records}


def from_received(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """Messages from ReceiveMessage (with ``MessageSystemAttributeNames=["All"]``, ``MessageAttributeNames=
    ["All"]``) as Lambda's SQS poller hands them to a function."""
    records = []
    for message in messages:
        attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            converted: dict[str, Any] = {"dataType": value["DataType"], "stringListValues": [], "binaryListValues": []}
            if "BinaryValue" in value:
                converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
            else:
                converted["stringValue"] = value["StringValue"]
            attributes[name] = converted
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes") or {}),
                "messageAttributes": attributes,
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def write_config(path: Path, routes: list[dict[str, Any]], **sections: Any) -> Path:
    """A Lambda configuration file (a ``lambda`` section, the queue ``watcher-events`` and ``routes``, plus
    ``sections``)."""
    queue = {"name": "watcher-events", **sections.pop("queue", {})}
    document = {"lambda": sections.pop("lambda_", {}), "queue": queue, **sections, "routes": routes}
    path.write_text(yaml.safe_dump(document))
    return path


def make_shim(path: Path, **emf: Any) -> Shim:
    return Shim(load_config(path), **emf)


def failures(response: Mapping[str, Any]) -> list[str]:
    """The message ids a response lists, checking its shape on the way."""
    assert set(response) == {"batchItemFailures"}, response
    assert all(set(item) == {"itemIdentifier"} for item in response["batchItemFailures"]), response
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def ids(event: Mapping[str, Any]) -> list[str]:
    return [record["messageId"] for record in event["Records"]]


def emf_documents(text: str) -> list[dict[str, Any]]:
    """The EMF documents among lines of output."""
    documents = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents
