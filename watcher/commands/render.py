"""``watcher render terraform -c FILE``: the configuration as the variables of deploy/terraform's
examples (``watcher.auto.tfvars.json``), so that nothing is written twice: the queue's settings, each
bucket's delivery shape and its notification filters merged exactly as ``watcher provision`` merges
them (watcher.notifications), where routes read (routes whose handler reads the object: container
jobs) and write (container outputs) for the worker's IAM policy, the Secrets Manager secrets and SSM
parameters the configuration refers to, and the DynamoDB table of the idempotency store."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from watcher.app import load_config
from watcher.config.loader import overridden_document
from watcher.config.refs import references
from watcher.config.schema import Config, RouteConfig
from watcher.handlers.registry import output_locations, reads_objects
from watcher.notifications import filters_for_bucket, routes_by_bucket
from watcher.sqs import queue_name_of


def cmd_render(args: argparse.Namespace) -> int:
    config = load_config(args.config, read_secret_stores=False)  # the secrets may not exist yet
    variables = terraform_variables(config, overridden_document(args.config))
    json.dump(variables, sys.stdout, indent=2, ensure_ascii=False)
    print()
    for route in config.routes:
        if route.bucket is None:
            print(f"note: route {route.name} names no bucket: it is not wired, and reads any bucket", file=sys.stderr)
    return 0


def terraform_variables(config: Config, document: dict[str, Any]) -> dict[str, Any]:
    queue = config.queue
    name = queue.name or queue_name_of(queue.url or "")
    buckets = {
        bucket: {
            "delivery": config.delivery.get(bucket, "direct"),
            "filters": [
                {"prefix": f.prefix, "suffix": f.suffix, "events": list(f.events)} for f in filters_for_bucket(routes)
            ],
        }
        for bucket, routes in sorted(routes_by_bucket(config.routes).items())
    }
    reads = {(route.bucket or "*", route.prefix) for route in config.routes if reads_objects(route)}
    writes = {(location.bucket, location.key_prefix) for route in config.routes for location in output_locations(route)}
    found = references(document)
    secrets = {argument.partition("#")[0] for source, argument in found if source == "secretsmanager"}
    batch = [route.handler.options for route in config.routes if _runs_on_batch(route)]
    staging = {_staging_of(options) for options in batch}
    store = config.idempotency
    return {
        "queue_name": name,
        "visibility_timeout_seconds": queue.visibility_timeout,
        "receive_wait_time_seconds": queue.wait_time_seconds,
        "max_receive_count": queue.max_receive_count,
        "buckets": buckets,
        "read_locations": [{"bucket": b, "prefix": p} for b, p in sorted(reads)],
        "write_locations": [{"bucket": b, "prefix": p} for b, p in sorted(writes)],
        "secret_names": sorted(secrets),
        "ssm_parameter_names": sorted({argument for source, argument in found if source == "ssm"}),
        "idempotency_table": store.table if store is not None and store.backend == "dynamodb" else None,
        "batch_job_queues": sorted({str(options["job_queue"]) for options in batch}),
        "batch_job_definitions": sorted({str(options["job_definition"]) for options in batch}),
        "batch_staging_locations": [{"bucket": b, "prefix": p} for b, p in sorted(staging)],
    }


def _runs_on_batch(route: RouteConfig) -> bool:
    return route.handler.type == "container" and route.handler.options.get("runtime") == "batch"


def _staging_of(options: Mapping[str, Any]) -> tuple[str, str]:
    """Where a (valid) batch route's jobs are staged, as its runtime stages them."""
    from watcher.handlers.container.handler import parse  # the container handler's code: batch routes only
    from watcher.handlers.container.runtimes.batch_staging import staging_folder

    parsed, _ = parse(options)
    assert parsed is not None, "the configuration was validated"
    return staging_folder(parsed)
