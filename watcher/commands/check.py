"""``watcher check [--live]``: the config is valid (and which route's output feeds which route; a
configuration with a ``lambda`` section also holds to what AWS Lambda can run, watcher.lambda_.rules);
with ``--live``, the queue exists, its DLQ is wired, and every route's bucket sends ObjectCreated
notifications to this queue (directly, through an SNS topic, or through EventBridge) with a filter
covering the route's prefix and suffix."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from watcher.app import load_config
from watcher.aws import client
from watcher.config.schema import Config, RouteConfig
from watcher.errors import ConfigError
from watcher.idempotency.dynamodb import table_aws
from watcher.lambda_.rules import lambda_problems
from watcher.notifications import from_s3, routes_by_bucket
from watcher.route_graph import feeds
from watcher.sqs import DeadLetterQueueUnreachable, QueueInfo, describe_queue_blocking


def cmd_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if config.lambda_ is not None:  # a configuration for AWS Lambda: only what Lambda can run
        problems = lambda_problems(config)
        if problems:
            raise ConfigError(problems, str(args.config))
    print(f"{args.config}: valid ({len(config.routes)} routes: {', '.join(r.name for r in config.routes)})")
    if config.lambda_ is not None:
        print("lambda: a configuration for AWS Lambda (handler watcher.lambda_.handler.handler)")
    for source, targets in feeds(config.routes).items():  # function composition, for the reader
        for target, uri in targets:
            print(f"feeds: route {source} writes to {uri}, which route {target} reads")
    if not args.live:
        return 0
    problems, notes = check_live(config)
    for note in notes:
        print(f"ok: {note}")
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


def check_live(config: Config) -> tuple[list[str], list[str]]:
    """Return (problems, notes). Every problem is reported, not just the first."""
    problems: list[str] = []
    notes: list[str] = []
    sqs = client(config.aws, "sqs")
    try:
        info = describe_queue_blocking(sqs, config.queue)
    except DeadLetterQueueUnreachable as exc:
        return [str(exc)], notes
    except (ClientError, BotoCoreError) as exc:
        return [f"queue {config.queue.url or config.queue.name}: not reachable: {exc}"], notes
    queue_arn = info.arn
    notes.append(f"queue {info.url} exists")
    problems += _check_dlq(sqs, info, notes)
    s3 = client(config.aws, "s3")
    for bucket, routes in sorted(routes_by_bucket(config.routes).items()):
        try:
            notification = s3.get_bucket_notification_configuration(Bucket=bucket)
        except (ClientError, BotoCoreError) as exc:
            problems.append(f"bucket {bucket}: cannot read its notification configuration: {exc}")
            continue
        for route in routes:
            problem = _check_route(config, route, notification, queue_arn)
            if problem:
                problems.append(f"route {route.name}: {problem}")
            else:
                notes.append(f"route {route.name}: bucket {bucket} notifies the queue")
    for route in config.routes:
        if not route.bucket:
            notes.append(f"route {route.name}: no bucket named, notifications not verified")
    problems += _check_idempotency(config, notes)
    return problems, notes


def _check_dlq(sqs: Any, info: QueueInfo, notes: list[str]) -> list[str]:
    if info.dlq_configured:
        try:  # the worker only learns at the first permanent failure: check it now
            sqs.get_queue_attributes(QueueUrl=info.dlq_url, AttributeNames=["QueueArn"])
        except (ClientError, BotoCoreError) as exc:
            return [f"queue.dlq_url {info.dlq_url}: not reachable: {exc}"]
        notes.append(f"dead-letter queue {info.dlq_url} (configured)")
        if info.max_receive_count is None:
            notes.append("the queue has no RedrivePolicy: retryable failures are retried until they expire")
        return []
    if info.dlq_url is None:
        return ["the queue has no RedrivePolicy and queue.dlq_url is not set: no dead-letter queue"]
    notes.append(f"dead-letter queue {info.dlq_url.rsplit('/', 1)[-1]} (maxReceiveCount {info.max_receive_count})")
    return []


def _check_route(config: Config, route: RouteConfig, notification: dict[str, Any], queue_arn: str) -> str | None:
    """None when some configuration delivers the route's events to the queue, else why not."""
    direct = [c for c in notification.get("QueueConfigurations", []) if c.get("QueueArn") == queue_arn]
    if any(from_s3(c).covers(route) for c in direct):
        return None
    via_topic = [
        c for c in notification.get("TopicConfigurations", []) if _topic_feeds_queue(config, c["TopicArn"], queue_arn)
    ]
    if any(from_s3(c).covers(route) for c in via_topic):
        return None
    if "EventBridgeConfiguration" in notification and _eventbridge_feeds_queue(config, queue_arn):
        return None
    found = direct + via_topic
    if found:
        filters = "; ".join(json.dumps(from_s3(c).to_s3()) for c in found)
        return (
            f"bucket {route.bucket} notifies the queue, but no filter covers prefix {route.prefix!r}, "
            f"suffix {route.suffix!r}, events {list(route.events)} (found: {filters})"
        )
    return (
        f"bucket {route.bucket} sends no notification to this queue "
        "(run `watcher provision`, or add it to your infrastructure code)"
    )


def _topic_feeds_queue(config: Config, topic_arn: str, queue_arn: str) -> bool:
    try:
        subscriptions = client(config.aws, "sns").list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    except (ClientError, BotoCoreError):
        return False
    return any(s.get("Protocol") == "sqs" and s.get("Endpoint") == queue_arn for s in subscriptions)


def _eventbridge_feeds_queue(config: Config, queue_arn: str) -> bool:
    try:
        rules = client(config.aws, "events").list_rule_names_by_target(TargetArn=queue_arn)["RuleNames"]
    except (ClientError, BotoCoreError):
        return False
    return bool(rules)


def _check_idempotency(config: Config, notes: list[str]) -> list[str]:
    """The store is usable: the DynamoDB table exists with its TTL, or the SQLite file can be made."""
    settings = config.idempotency
    if settings is None:
        return []
    if settings.backend == "dynamodb":
        dynamodb = client(table_aws(config), "dynamodb")
        try:
            dynamodb.describe_table(TableName=settings.table)
            ttl = dynamodb.describe_time_to_live(TableName=settings.table)["TimeToLiveDescription"]
        except (ClientError, BotoCoreError) as exc:
            return [f"idempotency table {settings.table}: not reachable: {exc} (`watcher provision` creates it)"]
        notes.append(f"idempotency table {settings.table} exists")
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or ttl.get("AttributeName") != "expires_at":
            notes.append(f"idempotency table {settings.table}: no TTL on expires_at, expired records stay (harmless)")
        return []
    folder = Path(settings.path).parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    if not os.access(existing, os.W_OK):
        return [f"idempotency.path {settings.path}: {existing} is not writable by this user"]
    notes.append(f"idempotency store {settings.path} (SQLite)")
    return []
