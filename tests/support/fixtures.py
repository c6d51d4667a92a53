"""Real-format SQS message bodies kept in tests/fixtures (see the comments in each test that uses them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture_path(name: str) -> Path:
    """The path of ``tests/fixtures/<name>`` (``.json`` may be left out)."""
    path = FIXTURES / (name if name.endswith(".json") else f"{name}.json")
    if not path.is_file():
        raise FileNotFoundError(f"no fixture {path.name} in {FIXTURES}")
    return path


def load_fixture(name: str) -> str:
    """The message body exactly as SQS would deliver it."""
    return fixture_path(name).read_text(encoding="utf-8")


def load_fixture_json(name: str) -> Any:
    return json.loads(load_fixture(name))


def s3_event(bucket: str, key: str, event_name: str = "ObjectCreated:Put") -> str:
    """An S3 event notification body as S3 writes it (key already URL-encoded by the caller)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-23T10:00:00.000Z",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": 3, "eTag": "0123456789abcdef", "sequencer": "0055AED6DCD90281E5"},
        },
    }
    return json.dumps({"Records": [record]})
