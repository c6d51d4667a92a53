"""``watcher explain``: what the worker would do with one message body, without doing it."""

from __future__ import annotations

from typing import Any

from watcher.config import Config
from watcher.envelope import parse_body
from watcher.records import dataset_of, dataset_uri
from watcher.routing import match_routes


def explain(config: Config, body: str | bytes) -> dict[str, Any]:
    """Records with the routes they match, and what is skipped. Raises MessageFormatError."""
    parsed = parse_body(body, raw_keys=config.raw_keys)
    records: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = [{"reason": s.reason, "detail": s.detail} for s in parsed.skipped]
    for record in parsed.records:
        routes, skip = match_routes(record, config.routes)
        if skip is not None:
            skipped.append({"reason": skip.reason, "detail": skip.detail})
        # The dataset depends on the route's suffix; the first matching route decides it here.
        dataset = dataset_of(record.key, routes[0].suffix if routes else None)
        records.append(
            {
                "bucket": record.bucket,
                "key": record.key,
                "dataset": dataset,
                "dataset_uri": dataset_uri(record.bucket, dataset),
                "event_name": record.event_name,
                "size": record.size,
                "etag": record.etag,
                "routes": [route.name for route in routes],
            }
        )
    return {"records": records, "skipped": skipped}
