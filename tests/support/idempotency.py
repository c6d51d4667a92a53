"""The two backends of the idempotency store, for tests that run the same behaviour on both: SQLite
in a temporary folder, and DynamoDB Local (a real server, started by the ``dynamodb_endpoint``
fixture) with a table of the test's own."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from watcher.config.schema import AwsConfig
from watcher.idempotency.backend import IdempotencyBackend
from watcher.idempotency.dynamodb import DynamoDbBackend, create_table
from watcher.idempotency.sqlite import SqliteBackend

BACKENDS = ("sqlite", "dynamodb")


def idempotency_section(backend: str, tmp_path: Path, endpoint: str | None) -> dict[str, Any]:
    """The ``idempotency`` section of a worker's configuration for ``backend`` (the DynamoDB
    table is created)."""
    if backend == "sqlite":
        return {"backend": "sqlite", "path": str(tmp_path / "idempotency.db")}
    assert endpoint is not None
    table = f"watcher-test-{uuid.uuid4().hex[:10]}"
    create_table(local_aws(endpoint), table)
    return {"backend": "dynamodb", "table": table, "endpoint_url": endpoint}


def local_aws(endpoint: str) -> AwsConfig:
    return AwsConfig(region="us-east-1", endpoint_url=endpoint)


def open_backend(section: dict[str, Any]) -> IdempotencyBackend:
    if section["backend"] == "sqlite":
        return SqliteBackend(section["path"])
    return DynamoDbBackend(section["table"], local_aws(section["endpoint_url"]))
