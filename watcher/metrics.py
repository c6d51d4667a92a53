"""The Prometheus metrics watcher keeps, on a registry of its own (not the global one) so that several
workers can share a process in tests and the Lambda shim can choose where they go. Serving them is
watcher.worker.health's job."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from watcher import __version__

_LAG_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
_DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


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
        self.lag = Histogram(
            "watcher_sqs_lag_seconds",
            "From SentTimestamp to receipt",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.queue_messages = Gauge(
            "watcher_sqs_queue_messages", "Approximate queue depth, polled", ["state"], registry=r
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
