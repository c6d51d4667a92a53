"""The metrics added for operators: every route's series exist at 0 from the start, readiness and the
oldest message held are computed at scrape time, and the DLQ's depth is polled with the queue's.

Against a live worker and a real Prometheus: tests/test_monitoring_integration.py."""

from __future__ import annotations

import math
import re
from typing import Any, get_args

from botocore.exceptions import ClientError

from tests.support.process import REPO
from watcher.metrics import ERROR_STAGES, OUTCOMES, Metrics
from watcher.outcome import Status
from watcher.worker.health import Readiness, bind_scrape_time_gauges, oldest_age
from watcher.worker.queue import QueueDepthPoller


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    value = metrics.registry.get_sample_value(name, labels)
    return None if value is None else float(value)


def test_every_route_has_its_records_and_duration_series_at_zero_before_any_unit() -> None:
    metrics = Metrics()
    metrics.init_routes([("csv", "log"), ("jobs", "container")])
    assert {
        (route, outcome): sample(metrics, "watcher_records_total", route=route, outcome=outcome)
        for route in ("csv", "jobs")
        for outcome in OUTCOMES
    } == {(route, outcome): 0.0 for route in ("csv", "jobs") for outcome in OUTCOMES}
    assert sample(metrics, "watcher_handler_duration_seconds_count", route="jobs", handler="container") == 0.0
    assert sample(metrics, "watcher_handler_duration_seconds_count", route="csv", handler="container") is None
    assert {stage: sample(metrics, "watcher_errors_total", stage=stage) for stage in ERROR_STAGES} == dict.fromkeys(
        ERROR_STAGES, 0.0
    )


def test_the_outcomes_created_are_the_statuses_a_unit_can_end_with() -> None:
    assert set(OUTCOMES) == set(get_args(Status))


def test_the_error_stages_created_are_exactly_those_the_code_counts() -> None:
    counted = set()
    for path in (REPO / "watcher").rglob("*.py"):
        counted |= set(re.findall(r'errors\.labels\("([a-z_]+)"\)', path.read_text()))
    assert counted == set(ERROR_STAGES)


def test_readiness_is_a_gauge_read_when_scraped() -> None:
    metrics, readiness = Metrics(), Readiness(window=60)
    bind_scrape_time_gauges(metrics, readiness, {})
    assert sample(metrics, "watcher_ready") == 0.0, "not ready before the queue answered"
    readiness.ok()
    assert sample(metrics, "watcher_ready") == 1.0
    readiness.failed("connection refused")
    assert sample(metrics, "watcher_ready") == 0.0


def test_the_oldest_message_age_is_that_of_the_earliest_sent_message_held() -> None:
    assert oldest_age({}, now=1000.0) == 0.0
    assert oldest_age({"r1": 900.0, "r2": 400.0, "r3": 990.0}, now=1000.0) == 600.0
    assert oldest_age({"r1": 1001.0}, now=1000.0) == 0.0, "a sender's clock ahead of ours is not a negative age"

    metrics, held = Metrics(), dict[str, float]()
    bind_scrape_time_gauges(metrics, Readiness(window=60), held)
    assert sample(metrics, "watcher_sqs_oldest_message_age_seconds") == 0.0
    held["receipt"] = 0.0  # sent at the epoch: decades ago
    assert (sample(metrics, "watcher_sqs_oldest_message_age_seconds") or 0) > 50 * 365 * 86400
    del held["receipt"]
    assert sample(metrics, "watcher_sqs_oldest_message_age_seconds") == 0.0


def test_max_in_flight_and_the_dlq_gauge_before_any_poll() -> None:
    metrics = Metrics()
    value = sample(metrics, "watcher_sqs_dlq_messages")
    assert value is not None and math.isnan(value), "unknown until the DLQ answers, not 0"
    assert sample(metrics, "watcher_sqs_max_in_flight") == 0.0


class _DlqRefusingSqs:
    """A fake SQS client: LocalStack enforces no IAM, so a DLQ the worker may not read (AccessDenied on
    GetQueueAttributes, a real situation with a narrow policy) cannot be made for real there."""

    def __init__(self) -> None:
        self.dlq_readable = True
        self.calls: list[str] = []

    async def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        self.calls.append(QueueUrl)
        if QueueUrl == "dlq" and not self.dlq_readable:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "GetQueueAttributes")
        counts = {"queue": ("5", "2", "1"), "dlq": ("3", "1", "0")}[QueueUrl]
        return {"Attributes": dict(zip(AttributeNames, counts, strict=True))}


async def test_the_dlq_is_polled_with_the_queue_and_a_dlq_that_cannot_be_read_does_not_unready() -> None:
    sqs, metrics, readiness = _DlqRefusingSqs(), Metrics(), Readiness(window=60)
    poller = QueueDepthPoller(sqs, "queue", 30, metrics, readiness, dlq_url="dlq")
    await poller.poll_once()
    assert sorted(sqs.calls) == ["dlq", "queue"], "one GetQueueAttributes per queue and poll"
    assert sample(metrics, "watcher_sqs_dlq_messages") == 4.0, "visible + in flight + delayed"
    assert sample(metrics, "watcher_sqs_queue_messages", state="visible") == 5.0

    sqs.dlq_readable = False
    await poller.poll_once()
    await poller.poll_once()
    assert sample(metrics, "watcher_sqs_dlq_messages") == 4.0, "the last known depth stays"
    assert sample(metrics, "watcher_errors_total", stage="queue_attributes") == 2.0
    assert readiness()[0], "the source queue answered: still ready"


async def test_without_a_dlq_only_the_queue_is_polled() -> None:
    sqs, metrics = _DlqRefusingSqs(), Metrics()
    await QueueDepthPoller(sqs, "queue", 30, metrics, Readiness(window=60)).poll_once()
    assert sqs.calls == ["queue"]
    value = sample(metrics, "watcher_sqs_dlq_messages")
    assert value is not None and math.isnan(value)
