"""The alerts and the dashboard against a live worker: a real Prometheus server, started by the test,
scrapes `watcher run` (a real subprocess on a real LocalStack) while it works through a few hundred
S3 notifications, some of which fail for good and some of which are retried until SQS dead-letters
them. Then every dashboard query (its Grafana variables substituted as Grafana would) and every
alert expression is evaluated through Prometheus's HTTP API: all must evaluate without error, and
those the load must feed have data. `promtool check metrics` checks a scrape of /metrics.

Grafana itself is not installable here; what it would do with the dashboard is: send these queries
to this API.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fire_server import EXECUTE, Canned, FireServer
from tests.support.fixtures import load_fixture, s3_event
from tests.support.process import WatcherProcess, base_config, wait_until
from tests.support.prometheus import (
    ALERTS,
    JOB,
    MISSING_PROMETHEUS,
    MISSING_PROMTOOL,
    PROMETHEUS,
    PROMTOOL,
    PanelQuery,
    PrometheusServer,
    alerts,
    metric_names,
    panel_queries,
    promtool,
    substitute,
    variable_queries,
)
from watcher.metrics import OUTCOMES

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(PROMETHEUS is None, reason=MISSING_PROMETHEUS),
    pytest.mark.skipif(PROMTOOL is None, reason=MISSING_PROMTOOL),
]

HANDLERS = "tests.support.handlers"
TOKEN = "monitoring-test-token"
# The load: messages per route prefix.
# slow/: one unit of 2.5 s, held across two scrapes at least (the oldest-message age must see it)
LOAD = {"logs/": 200, "ok/": 50, "bad/": 25, "retry/": 15, "jobs/": 5, "events/": 5, "slow/": 1}
TEST_EVENTS = 3  # s3:TestEvent messages: skipped, reason test_event
MAX_RECEIVE_COUNT = 3
RATE_INTERVAL = "1m"

# Panel queries (panel title, refId) that may be empty after this load, and why. Every other query
# must return data (and quantiles a number).
MAY_BE_EMPTY = {
    ("Heartbeat visibility extensions", "B"): "no heartbeat fails against a healthy LocalStack",
}
# Alert expressions that must return samples after this load (the alert is pending or firing), with
# the label values they must name; all others must return nothing.
ALERTING: dict[str, dict[str, set[str] | None]] = {
    "WatcherRouteErrorRatio": {"route": {"rejected", "flaky"}},  # fire: 1 retry of 5, below the 5 failures
    "WatcherDeadLettering": {"instance": None},  # 25 dead-lettered in about a minute: > 1 per minute
    "WatcherDLQNotEmpty": {"instance": None},  # the DLQ holds the bad/ and retry/ messages
}


def routes(bucket: str, calls: Path, script: Path, fire: FireServer) -> list[dict[str, Any]]:
    def python(name: str, prefix: str, function: str, **extra: Any) -> dict[str, Any]:
        options = {"calls_file": str(calls), **extra}
        handler = {"type": "python", "function": f"{HANDLERS}:{function}", "options": options}
        return {"name": name, "bucket": bucket, "prefix": prefix, "handler": handler}

    job = {"type": "container", "runtime": "process", "script": str(script), "output": f"s3://{bucket}/out/"}
    workflow = {
        "type": "workflow",
        "url": fire.url + EXECUTE,
        "workflow_id": "42",
        "token": "${env:FIRE_TOKEN}",
        "timeout_seconds": 5,
        "retry": {"attempts": 3, "max_seconds": 10, "initial_seconds": 0.1},
    }
    return [
        {"name": "logged", "bucket": bucket, "prefix": "logs/", "handler": {"type": "log"}},
        python("processed", "ok/", "record"),
        python("rejected", "bad/", "fail_permanent"),
        python("flaky", "retry/", "fail_retryable"),
        {"name": "jobs", "bucket": bucket, "prefix": "jobs/", "handler": job},
        {"name": "fire", "bucket": bucket, "prefix": "events/", "handler": workflow},
        python("slow", "slow/", "sleep", seconds=2.5),
    ]


@dataclass
class Loaded:
    worker: WatcherProcess
    prometheus: PrometheusServer
    target: str
    routes: list[str]
    timings: dict[str, float]
    idle_at: float  # time.time() after a few scrapes, before the first message


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, make_queues_module: Any, s3_module: Any, unique_module: str
) -> Iterator[Loaded]:
    """One worker under load, scraped by one Prometheus, shared by the checks below."""
    tmp_path = tmp_path_factory.mktemp("monitoring")
    make_queues, s3, unique = make_queues_module, s3_module, unique_module
    timings: dict[str, float] = {}
    started = time.monotonic()

    queues = make_queues(visibility_timeout=30, max_receive_count=MAX_RECEIVE_COUNT)
    bucket = f"monitoring-{unique}"
    s3.create_bucket(Bucket=bucket)
    for i in range(LOAD["jobs/"]):
        s3.put_object(Bucket=bucket, Key=f"jobs/in-{i}.txt", Body=f"input {i}\n".encode())
    script = tmp_path / "job.sh"
    script.write_text('wc -c < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/size.txt"\n')

    fire = FireServer(TOKEN).start()
    fire.fail_next(Canned(503))  # one HTTP retry, reason 503
    config = base_config(
        queues.url,
        routes(bucket, tmp_path / "calls.jsonl", script, fire),
        queue={"max_in_flight": 16, "wait_time_seconds": 1},
        metrics={"queue_poll_seconds": 1},
    )
    worker = WatcherProcess(config, tmp_path, env={"FIRE_TOKEN": TOKEN, "WATCHER_WORK_DIR": str(tmp_path / "work")})
    prometheus: PrometheusServer | None = None
    try:
        worker.wait_started()
        target = f"127.0.0.1:{worker.metrics_port}"
        prometheus = PrometheusServer(tmp_path, [target], [ALERTS])
        wait_until(prometheus.targets_up, 30, 0.5, what="the worker scraped")
        timings["set-up"] = time.monotonic() - started

        time.sleep(2.5)  # a few scrapes of the idle worker
        idle_at = time.time()
        # The worker creates every route's records and duration series at 0 when it starts (checked by
        # test_route_series_exist_at_0_before_the_first_message). Series of the workflow and container
        # handlers (HTTP requests, container jobs) still appear at their first observation: a warm-up
        # message for those two routes, scraped before the load, lets rate() see their load too.
        by_prefix = {prefix: [s3_event(bucket, f"{prefix}in-{i}.txt") for i in range(n)] for prefix, n in LOAD.items()}
        warm_up = {"jobs/": "jobs", "events/": "fire"}
        send(queues, [by_prefix[prefix].pop(0) for prefix in warm_up])
        wait_until(lambda: all(seen(worker, name) for name in warm_up.values()), 60, 0.5, what="the warm-up")
        time.sleep(2.5)

        route_names = [str(r["name"]) for r in config["routes"]]
        sent = time.monotonic()
        bodies = [body for bodies in by_prefix.values() for body in bodies]
        bodies += [load_fixture("s3_test_event")] * TEST_EVENTS
        send(queues, bodies)
        dead = LOAD["bad/"] + LOAD["retry/"]
        wait_until(lambda: queues.empty(), 180, 1, what="the queue drained")
        wait_until(lambda: queues.depth(queues.dlq_url)["visible"] == dead, 60, 1, what=f"{dead} messages in the DLQ")
        timings[f"{len(bodies)} messages processed"] = time.monotonic() - sent
        time.sleep(3)  # a few more scrapes of the final figures
        yield Loaded(worker, prometheus, target, route_names, timings, idle_at)
    finally:
        if prometheus is not None:
            prometheus.stop()
        assert worker.stop() == 0, worker.output()
        fire.stop()
        print("timings: " + ", ".join(f"{what} {seconds:.1f}s" for what, seconds in timings.items()))


def seen(worker: WatcherProcess, route: str) -> bool:
    return worker.metric("watcher_records_total", {"route": route, "outcome": "ok"}) > 0


def send(queues: Any, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        batch = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        queues.sqs.send_message_batch(QueueUrl=queues.url, Entries=batch)


# Module-scoped versions of conftest's function-scoped fixtures, so that the load runs once.
@pytest.fixture(scope="module")
def unique_module() -> str:
    import uuid

    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def s3_module(localstack_endpoint: str) -> Any:
    from tests.conftest import _client

    return _client("s3")


@pytest.fixture(scope="module")
def make_queues_module(localstack_endpoint: str, unique_module: str) -> Iterator[Any]:
    from tests.conftest import Queues, _client

    made: list[Queues] = []
    sqs = _client("sqs")

    def make(visibility_timeout: int = 30, max_receive_count: int = 5) -> Queues:
        queues = Queues(sqs, f"watcher-monitoring-{unique_module}-{len(made)}", visibility_timeout, max_receive_count)
        made.append(queues)
        return queues

    yield make
    for queues in made:
        queues.delete()


def dashboard_variables(loaded: Loaded, route: str = ".*") -> dict[str, str]:
    return {
        "job": JOB,
        "instance": loaded.target,
        "route": route,
        "__rate_interval": RATE_INTERVAL,
        "__interval": "15s",
    }


def exported(loaded: Loaded) -> set[str]:
    names = loaded.prometheus.api("label/__name__/values", **{"match[]": f'{{job="{JOB}"}}'})
    return set(names)


def test_the_variables_list_the_job_the_instance_and_the_routes(loaded: Loaded) -> None:
    prometheus = loaded.prometheus
    definitions = variable_queries()
    values: dict[str, list[str]] = {}
    for name, definition in definitions.items():
        # label_values(<selector>, <label>) is Grafana's: Prometheus answers it with /api/v1/label/.
        selector, _, label = definition.removeprefix("label_values(").removesuffix(")").rpartition(",")
        selector = substitute(selector.strip(), dashboard_variables(loaded))
        values[name] = prometheus.api(f"label/{label.strip()}/values", **{"match[]": selector})
    assert JOB in values["job"]
    assert loaded.target in values["instance"]
    assert set(values["route"]) == set(loaded.routes)


def test_every_panel_query_evaluates_and_those_the_load_feeds_have_data(loaded: Loaded) -> None:
    present = exported(loaded)
    now = time.time()
    empty: list[tuple[str, str]] = []
    for query in panel_queries():
        routes = loaded.routes if query.panel_type == "heatmap" else [".*"]  # a repeated panel: one per route
        for route in routes:
            expr = substitute(query.expr, dashboard_variables(loaded, route))
            result = loaded.prometheus.query(expr, at=now)  # raises on any error or warning
            assert metric_names(query.expr) <= present, (query, metric_names(query.expr) - present)
            if not result:
                empty.append((query.panel, query.ref_id))
                continue
            if "histogram_quantile" in query.expr:
                assert_finite(query, route, result)
    assert sorted(set(empty) - MAY_BE_EMPTY.keys()) == []
    print(f"empty, as allowed: {sorted(set(empty))}")


def assert_finite(query: PanelQuery, route: str, result: list[dict[str, Any]]) -> None:
    values = [float(sample["value"][1]) for sample in result]
    assert values and all(math.isfinite(v) for v in values), (query, route, result)


def test_the_figures_match_the_load(loaded: Loaded) -> None:
    """The numbers the outcome panels draw from are the worker's real counts."""
    samples = loaded.prometheus.query(f'sum by (route, outcome) (watcher_records_total{{job="{JOB}"}}) > 0')
    counts = {(s["metric"]["route"], s["metric"]["outcome"]): float(s["value"][1]) for s in samples}
    assert counts == {
        ("logged", "ok"): LOAD["logs/"],
        ("processed", "ok"): LOAD["ok/"],
        ("rejected", "permanent"): LOAD["bad/"],
        ("flaky", "retry"): LOAD["retry/"] * MAX_RECEIVE_COUNT,
        ("jobs", "ok"): LOAD["jobs/"],
        ("fire", "ok"): LOAD["events/"],
        ("slow", "ok"): LOAD["slow/"],
    }
    http = loaded.prometheus.query(f'sum by (status) (watcher_http_requests_total{{job="{JOB}"}})')
    assert {s["metric"]["status"]: float(s["value"][1]) for s in http} == {"503": 1, "200": LOAD["events/"]}
    errors = loaded.prometheus.query(f'sum by (stage) (watcher_errors_total{{job="{JOB}"}}) > 0')
    failed_units = LOAD["bad/"] + LOAD["retry/"] * MAX_RECEIVE_COUNT
    assert {s["metric"]["stage"]: float(s["value"][1]) for s in errors} == {"handler": failed_units}
    skipped = loaded.prometheus.query(f'watcher_records_skipped_total{{job="{JOB}", reason="test_event"}}')
    assert [float(s["value"][1]) for s in skipped] == [TEST_EVENTS]


def test_route_series_exist_at_0_before_the_first_message(loaded: Loaded) -> None:
    """So that rate() and increase() count the first burst: a series born at its first increment
    would hide that increment."""
    before = loaded.idle_at
    records = loaded.prometheus.query(f'watcher_records_total{{job="{JOB}"}}', at=before)
    assert by_route_and_outcome(records) == {(route, outcome): 0.0 for route in loaded.routes for outcome in OUTCOMES}
    durations = loaded.prometheus.query(f'watcher_handler_duration_seconds_count{{job="{JOB}"}}', at=before)
    assert sorted((s["metric"]["route"], float(s["value"][1])) for s in durations) == sorted(
        (route, 0.0) for route in loaded.routes
    )
    # increase() extrapolates but never falls below last - first: with the series at 0 before the load,
    # it counts every unit; a series born with the burst would start from its first scraped value.
    totals = by_route_and_outcome(loaded.prometheus.query(f'watcher_records_total{{job="{JOB}"}} > 0'))
    increases = by_route_and_outcome(loaded.prometheus.query(f'increase(watcher_records_total{{job="{JOB}"}}[10m])'))
    assert {key: increases.get(key, 0.0) >= total for key, total in totals.items()} == dict.fromkeys(totals, True)


def by_route_and_outcome(samples: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    return {(s["metric"]["route"], s["metric"]["outcome"]): float(s["value"][1]) for s in samples}


def test_the_operator_gauges_tell_the_state_of_the_worker_and_its_queues(loaded: Loaded) -> None:
    def value(expr: str) -> float:
        samples = loaded.prometheus.query(expr)
        assert len(samples) == 1, (expr, samples)
        return float(samples[0]["value"][1])

    selector = f'{{job="{JOB}"}}'
    assert value(f"watcher_sqs_dlq_messages{selector}") == LOAD["bad/"] + LOAD["retry/"]
    assert value(f"watcher_ready{selector}") == 1
    assert value(f"watcher_sqs_max_in_flight{selector}") == 16
    assert value(f"watcher_sqs_oldest_message_age_seconds{selector}") == 0, "nothing held once drained"
    assert value(f"max_over_time(watcher_sqs_oldest_message_age_seconds{selector}[5m])") > 0, "something was held"


def test_every_alert_expression_evaluates_and_only_the_failing_routes_alert(loaded: Loaded) -> None:
    present = exported(loaded)
    for alert in alerts():
        result = loaded.prometheus.query(alert.expr)
        assert metric_names(alert.expr) <= present, (alert.name, metric_names(alert.expr) - present)
        expected = ALERTING.get(alert.name)
        if expected is None:
            assert result == [], f"{alert.name} should not fire: {result}"
            continue
        assert result, f"{alert.name} should be pending or firing after this load"
        for label, values in expected.items():
            if values is not None:
                assert {s["metric"][label] for s in result} == values, alert.name


def test_prometheus_evaluates_every_rule_without_error(loaded: Loaded) -> None:
    groups = loaded.prometheus.api("rules")["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(rules) == {alert.name for alert in alerts()}
    assert {name: (rule["health"], rule.get("lastError", "")) for name, rule in rules.items()} == {
        name: ("ok", "") for name in rules
    }
    states = {name: rule["state"] for name, rule in rules.items()}
    print(f"alert states after the load: {states}")


def test_promtool_check_metrics_accepts_a_scrape(loaded: Loaded) -> None:
    status, text = loaded.worker.http_get("/metrics")
    assert status == 200
    result = promtool("check", "metrics", stdin=text)
    assert (result.returncode, result.stdout + result.stderr) == (0, ""), "promtool's complaints about /metrics"
