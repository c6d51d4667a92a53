"""The configuration contract: frozen dataclasses. This module imports nothing of watcher's, so every
layer may depend on it; loading and validating a file is ``watcher.config.loader``'s job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

SECTIONS = ("aws", "queue", "worker", "metrics", "logging", "idempotency", "lambda")
TOP_LEVEL_SCALARS = ("raw_keys",)
DEFAULT_EVENTS = ("s3:ObjectCreated:*",)
DELIVERIES = ("direct", "sns", "eventbridge")  # how a bucket's events reach the queue


@dataclass(frozen=True, slots=True)
class AwsConfig:
    region: str = "us-east-1"
    endpoint_url: str | None = None
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class QueueConfig:
    url: str | None = None
    name: str | None = None
    dlq_url: str | None = None
    wait_time_seconds: int = 20
    visibility_timeout: int = 120
    max_in_flight: int = 16
    max_receive_count: int = 5  # deliveries before SQS's redrive (provision, render terraform)


EVENT_LOOPS = ("auto", "asyncio", "uvloop")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    shutdown_grace_seconds: float = 30.0
    retry_initial_seconds: float = 10.0  # first backoff of a retryable failure
    retry_max_seconds: float = 900.0  # backoff cap (SQS allows 12 h)
    default_timeout_seconds: float | None = None  # per-unit timeout when a route sets none
    event_loop: str = "auto"  # auto (uvloop when installed) | asyncio | uvloop


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    port: int = 9400  # 0 disables the HTTP endpoint
    host: str = "0.0.0.0"
    queue_poll_seconds: float = 30.0  # how often the queue depth gauges are refreshed


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"  # auto (console on a TTY, else JSON) | json | console


@dataclass(frozen=True, slots=True)
class IdempotencyConfig:
    """Which units already ran: present in the file -> on (watcher.idempotency)."""

    backend: str = "sqlite"  # sqlite (one host) | dynamodb (several workers on one queue)
    path: str = ""  # sqlite: the database file (the loader fills in the default)
    table: str = "watcher-idempotency"  # dynamodb
    endpoint_url: str | None = None  # dynamodb: another endpoint than aws.endpoint_url (DynamoDB Local)
    completed_ttl_seconds: int = 604800  # how long a completed unit is remembered
    lease_seconds: int | None = None  # how long an in-progress claim holds; default queue.visibility_timeout


@dataclass(frozen=True, slots=True)
class LambdaConfig:
    """Running as an AWS Lambda function (watcher.lambda_): present in the file -> a Lambda config,
    which ``watcher check`` holds to what Lambda can run."""

    max_concurrency: int = 10  # records of one batch processed at once (a FIFO source: one at a time)
    reserve_seconds: float = 2.0  # kept before the function's end to give up, settle and return
    metrics_namespace: str = "watcher"  # CloudWatch namespace of the EMF metrics


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    type: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # The options as written, references unresolved: a handler re-resolves one (a rotated token).
    raw_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class RouteConfig:
    name: str
    handler: HandlerSpec
    bucket: str | None = None
    prefix: str = ""
    suffix: str = ""
    events: tuple[str, ...] = DEFAULT_EVENTS
    timeout_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Config:
    aws: AwsConfig = AwsConfig()
    queue: QueueConfig = QueueConfig()
    worker: WorkerConfig = WorkerConfig()
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()
    routes: tuple[RouteConfig, ...] = ()
    raw_keys: bool = False
    source: str = "config"
    idempotency: IdempotencyConfig | None = None
    # bucket -> how its events reach the queue (DELIVERIES); buckets not named are "direct"
    delivery: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    lambda_: LambdaConfig | None = None  # the `lambda` section (a keyword in Python)


SECTION_TYPES: dict[str, type[Any]] = {
    "aws": AwsConfig,
    "queue": QueueConfig,
    "worker": WorkerConfig,
    "metrics": MetricsConfig,
    "logging": LoggingConfig,
    "idempotency": IdempotencyConfig,
    "lambda": LambdaConfig,
}
