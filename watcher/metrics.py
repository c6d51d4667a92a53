"""The Prometheus metrics watcher keeps, on a registry of its own (not the global one) so that several
workers can share a process in tests and the Lambda shim can choose where they go. Serving them is
watcher.worker.health's job."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from watcher import __version__

_LAG_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
_DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# Label values created at 0 when the routes are known (``Metrics.init_routes``): a series that first
# appears at its first increment hides that increment from rate() and increase().
OUTCOMES = ("ok", "retry", "permanent")  # watcher.outcome.Status
ERROR_STAGES = (
    "parse",
    "handler",
    "dispatch",
    "idempotency",
    "receive",
    "connect",
    "delete",
    "visibility",
    "heartbeat",
    "dead_letter",
    "queue_attributes",
    "cleanup",
    "settle",  # the Lambda shim: a record whose retry or dead-lettering failed
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.received = Counter("watcher_sqs_messages_received", "SQS messages received", registry=r)
        self.deleted = Counter("watcher_sqs_messages_deleted", "SQS messages deleted after success", registry=r)
        self.retried = Counter(
            "watcher_sqs_messages_retried",
            "Messages handed back with a backoff after a retryable failure",
            registry=r,
        )
        self.dead_lettered = Counter(
            "watcher_sqs_messages_dead_lettered",
            "Messages sent to the DLQ after a permanent failure",
            registry=r,
        )
        self.returned = Counter(
            "watcher_sqs_messages_returned",
            "Messages made visible again at shutdown, unprocessed",
            registry=r,
        )
        self.visibility_extensions = Counter(
            "watcher_sqs_visibility_extensions", "Heartbeat visibility extensions", registry=r
        )
        self.in_flight = Gauge("watcher_sqs_messages_in_flight", "Messages being processed now", registry=r)
        self.max_in_flight = Gauge(
            "watcher_sqs_max_in_flight", "queue.max_in_flight: the most messages processed at once", registry=r
        )
        self.ready = Gauge("watcher_ready", "1 while the worker is ready (/readyz answers 200), else 0", registry=r)
        self.lag = Histogram(
            "watcher_sqs_lag_seconds",
            "From SentTimestamp to receipt",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.queue_messages = Gauge(
            "watcher_sqs_queue_messages", "Approximate queue depth, polled", ["state"], registry=r
        )
        self.dlq_messages = Gauge(
            "watcher_sqs_dlq_messages",
            "Approximate number of messages in the dead-letter queue (visible, in flight and delayed), polled "
            "with the queue depth; NaN until the DLQ first answers",
            registry=r,
        )
        self.dlq_messages.set(float("nan"))
        self.oldest_message_age = Gauge(
            "watcher_sqs_oldest_message_age_seconds",
            "Now minus the SentTimestamp of the oldest message this worker holds; 0 when it holds none",
            registry=r,
        )
        self.records = Counter(
            "watcher_records",
            "Units of work (record x route) by outcome",
            ["route", "outcome"],
            registry=r,
        )
        self.skipped = Counter(
            "watcher_records_skipped",
            "Records or messages skipped, by reason",
            ["reason"],
            registry=r,
        )
        self.handler_duration = Histogram(
            "watcher_handler_duration_seconds",
            "Wall time of one unit of work",
            ["route", "handler"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.errors = Counter("watcher_errors", "Errors by stage of the pipeline", ["stage"], registry=r)
        self.http_requests = Counter(
            "watcher_http_requests",
            "HTTP requests made by handlers, by HTTP status (or timeout / connection_error)",
            ["route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "watcher_http_request_duration_seconds",
            "Wall time of one HTTP request made by a handler",
            ["route"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.http_retries = Counter(
            "watcher_http_retries",
            "HTTP requests retried by handlers, by reason (status code, timeout, connection_error, auth_refresh)",
            ["route", "reason"],
            registry=r,
        )
        self.container_jobs = Counter(
            "watcher_container_jobs",
            "Container jobs by result: ok, exit_code, timeout, oom, error (could not run)",
            ["route", "runtime", "result"],
            registry=r,
        )
        self.container_outputs = Counter(
            "watcher_container_outputs_uploaded", "Files a job wrote and watcher uploaded", ["route"], registry=r
        )
        self.container_outputs_skipped = Counter(
            "watcher_container_outputs_skipped",
            "Output entries not uploaded: symlink, hardlink, special, bad_name, too_deep, too_many, changed",
            ["route", "reason"],
            registry=r,
        )
        self.container_bytes = Counter(
            "watcher_container_transfer_bytes",
            "Bytes downloaded / uploaded by container jobs",
            ["route", "direction"],
            registry=r,
        )
        self.container_leftovers = Counter(
            "watcher_container_leftovers_removed",
            "What dead workers left, removed at start: work_dir, docker (containers), process (scripts)",
            ["kind"],
            registry=r,
        )
        self.build_info = Info("watcher_build", "watcher version", registry=r)
        self.build_info.info({"version": __version__})

    def init_routes(self, routes: Iterable[tuple[str, str]]) -> None:
        """Create the labelled series of every ``(route name, handler type)`` at 0, and every error
        stage's, before the first scrape: rate() and increase() then see the first burst too."""
        for route, handler_type in routes:
            self.handler_duration.labels(route, handler_type)
            for outcome in OUTCOMES:
                self.records.labels(route, outcome)
        for stage in ERROR_STAGES:
            self.errors.labels(stage)
