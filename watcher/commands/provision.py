"""``watcher provision``: create what a config needs on LocalStack or a development account:
buckets, the queue and its DLQ with a redrive policy, the queue policy that lets S3 send, and the
bucket notifications for the routes. Idempotent. Production wiring belongs in infrastructure code
(Terraform)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from watcher.app import load_config
from watcher.aws import client
from watcher.config.schema import Config
from watcher.errors import error_code
from watcher.idempotency.dynamodb import create_table, table_aws
from watcher.notifications import filters_for_bucket, routes_by_bucket
from watcher.sqs import queue_name_of

NOTIFICATION_ID_PREFIX = "watcher-"
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


def cmd_provision(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    provision(config, max_receive_count=args.max_receive_count)  # None: queue.max_receive_count
    return 0


def queue_name(config: Config) -> str:
    if config.queue.name:
        return config.queue.name
    assert config.queue.url is not None
    return queue_name_of(config.queue.url)


def dlq_name(config: Config) -> str:
    if config.queue.dlq_url:
        return queue_name_of(config.queue.dlq_url)
    name = queue_name(config)
    return name[: -len(".fifo")] + "-dlq.fifo" if name.endswith(".fifo") else name + "-dlq"


def provision(config: Config, max_receive_count: int | None = None, say: Callable[[str], None] = print) -> str:
    """Create or update everything; return the queue URL. Buckets whose ``delivery`` is sns or
    eventbridge are left to Terraform (``watcher render terraform``)."""
    max_receive_count = max_receive_count or config.queue.max_receive_count
    sqs = client(config.aws, "sqs")
    s3 = client(config.aws, "s3")
    fifo = queue_name(config).endswith(".fifo")
    fifo_attributes = {"FifoQueue": "true"} if fifo else {}

    dlq_url = sqs.create_queue(
        QueueName=dlq_name(config),
        Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS), **fifo_attributes},
    )["QueueUrl"]
    dlq_arn = _arn(sqs, dlq_url)
    say(f"dead-letter queue {dlq_url}")

    queue_url = sqs.create_queue(QueueName=queue_name(config), Attributes=fifo_attributes)["QueueUrl"]
    queue_arn = _arn(sqs, queue_url)
    buckets = {b: r for b, r in routes_by_bucket(config.routes).items() if config.delivery.get(b, "direct") == "direct"}
    statements = [
        {
            "Sid": "AllowS3Notifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": [f"arn:aws:s3:::{b}" for b in sorted(buckets)]}},
        }
    ]
    attributes = {
        "VisibilityTimeout": str(config.queue.visibility_timeout),
        "ReceiveMessageWaitTimeSeconds": str(config.queue.wait_time_seconds),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
    }
    if buckets:  # no route names a bucket: leave the queue policy to whoever wires the buckets
        attributes["Policy"] = json.dumps({"Version": "2012-10-17", "Statement": statements})
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    sqs.set_queue_attributes(
        QueueUrl=dlq_url,
        Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [queue_arn]})},
    )
    say(f"queue {queue_url} (maxReceiveCount {max_receive_count})")

    for bucket, routes in sorted(buckets.items()):
        _ensure_bucket(s3, bucket, config.aws.region)
        existing = dict(s3.get_bucket_notification_configuration(Bucket=bucket))
        existing.pop("ResponseMetadata", None)
        others = [
            c for c in existing.get("QueueConfigurations", []) if not c.get("Id", "").startswith(NOTIFICATION_ID_PREFIX)
        ]
        ours = [
            {"Id": f"{NOTIFICATION_ID_PREFIX}{index}", "QueueArn": queue_arn, **f.to_s3()}
            for index, f in enumerate(filters_for_bucket(routes))
        ]
        existing["QueueConfigurations"] = others + ours
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=existing)
        names = ", ".join(r.name for r in routes)
        say(f"bucket {bucket}: {len(ours)} notification(s) to the queue for routes {names}")
    for bucket, shape in sorted(config.delivery.items()):
        if shape != "direct":
            say(f"bucket {bucket} is delivered through {shape}: not wired here (see watcher render terraform)")
    for route in config.routes:
        if not route.bucket:
            say(f"route {route.name} names no bucket: wire its buckets to the queue yourself")
    settings = config.idempotency
    if settings is not None and settings.backend == "dynamodb":
        created = create_table(table_aws(config), settings.table)
        say(f"idempotency table {settings.table} ({'created' if created else 'exists'}; on-demand, TTL on expires_at)")
    return str(queue_url)


def _arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as exc:
        if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
