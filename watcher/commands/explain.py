"""``watcher explain``: what the worker would do with one message body, without doing it: the
records it holds, the routes each matches, and what is skipped. No handler is created."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from watcher.app import load_config
from watcher.config.schema import Config
from watcher.dispatch import plan_message
from watcher.errors import MessageFormatError
from watcher.records import dataset_of, dataset_uri


def cmd_explain(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.message == "-":
        body = sys.stdin.buffer.read()
    else:
        with open(args.message, "rb") as handle:
            body = handle.read()
    try:
        result = explain(config, body)
    except MessageFormatError as exc:
        print(f"watcher explain: {exc}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


def explain(config: Config, body: str | bytes) -> dict[str, Any]:
    """Records with the routes they match, and what is skipped. Raises MessageFormatError."""
    plan = plan_message(body, config.routes, raw_keys=config.raw_keys)
    records: list[dict[str, Any]] = []
    for record, routes in plan.records:
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
    return {"records": records, "skipped": [{"reason": s.reason, "detail": s.detail} for s in plan.skipped]}
