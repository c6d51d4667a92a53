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
    PROPOSED_METRICS,
    PanelQuery,
    PrometheusServer,
    alerts,
    metric_names,
    panel_queries,
    promtool,
    substitute,
    variable_queries,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(PROMETHEUS is None, reason=MISSING_PROMETHEUS),
    pytest.mark.skipif(PROMTOOL is None, reason=MISSING_PROMTOOL),
]

HANDLERS = "tests.support.handlers"
TOKEN = "monitoring-test-token"
# The load: messages per route prefix.
LOAD = {"logs/": 200, "ok/": 50, "bad/": 25, "retry/": 15, "jobs/": 5, "events/": 5}
TEST_EVENTS = 3  # s3:TestEvent messages: skipped, reason test_event
MAX_RECEIVE_COUNT = 3
RATE_INTERVAL = "1m"

# Panel queries (panel title, refId) that may be empty after this load, and why. Every other query
# must return data (and quantiles a number), or, if it reads a proposed metric, evaluate without error.
MAY_BE_EMPTY = {
    ("Heartbeat visibility extensions", "B"): "no heartbeat fails against a healthy LocalStack",
}
# Alert expressions that must return samples after this load (the alert is pending or firing), with
# the label values they must name; all others must return nothing.
ALERTING: dict[str, dict[str, set[str] | None]] = {
    "WatcherRouteErrorRatio": {"route": {"rejected", "flaky"}},  # fire: 1 retry of 5, below the 5 failures
    "WatcherDeadLettering": {"instance": None},  # 25 dead-lettered in about a minute: > 1 per minute
}
ALERTING_ONCE_ADDED: dict[str, dict[str, set[str] | None]] = {
    "WatcherDLQNotEmpty": {"instance": None}
}  # the DLQ holds bad/ and retry/ messages


def routes(bucket: str, calls: Path, script: Path, fire: FireServer) -> list[dict[str, Any]]:
    def python(name: str, prefix: str, function: str) -> dict[str, Any]:
        options = {"calls_file": str(calls)}
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
    ]


@dataclass
class Loaded:
    worker: WatcherProcess
    prometheus: PrometheusServer
    target: str
    routes: list[str]
    timings: dict[str, float]


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

        # A warm-up message per route first, scraped twice before the load: a labelled series appears
        # at its first observation, so increments made before Prometheus first saw it are invisible
        # to rate() (see the report: the lead may initialise route labels at start instead).
        by_prefix = {prefix: [s3_event(bucket, f"{prefix}in-{i}.txt") for i in range(n)] for prefix, n in LOAD.items()}
        send(queues, [bodies[0] for bodies in by_prefix.values()])
        route_names = [str(r["name"]) for r in config["routes"]]
        wait_until(lambda: all(seen(worker, name) for name in route_names), 60, 0.5, what="a unit on every route")
        time.sleep(2.5)

        sent = time.monotonic()
        bodies = [body for bodies in by_prefix.values() for body in bodies[1:]]
        bodies += [load_fixture("s3_test_event")] * TEST_EVENTS
        send(queues, bodies)
        dead = LOAD["bad/"] + LOAD["retry/"]
        wait_until(lambda: queues.depth() == {"visible": 0, "in_flight": 0}, 180, 1, what="the queue drained")
        wait_until(lambda: queues.depth(queues.dlq_url)["visible"] == dead, 60, 1, what=f"{dead} messages in the DLQ")
        timings[f"{len(bodies)} messages processed"] = time.monotonic() - sent
        time.sleep(3)  # a few more scrapes of the final figures
        yield Loaded(worker, prometheus, target, route_names, timings)
    finally:
        if prometheus is not None:
            prometheus.stop()
        assert worker.stop() == 0, worker.output()
        fire.stop()
        print("timings: " + ", ".join(f"{what} {seconds:.1f}s" for what, seconds in timings.items()))


def send(queues: Any, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        batch = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        queues.sqs.send_message_batch(QueueUrl=queues.url, Entries=batch)


def seen(worker: WatcherProcess, route: str) -> bool:
    return any(
        worker.metric("watcher_records_total", {"route": route, "outcome": outcome}) > 0
        for outcome in ("ok", "retry", "permanent")
    )


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


def reads_missing_metric(expr: str, present: set[str]) -> set[str]:
    return {name for name in metric_names(expr) if name not in present} & PROPOSED_METRICS.keys()


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
    waiting: dict[str, list[str]] = {}
    for query in panel_queries():
        routes = loaded.routes if query.panel_type == "heatmap" else [".*"]  # a repeated panel: one per route
        for route in routes:
            expr = substitute(query.expr, dashboard_variables(loaded, route))
            result = loaded.prometheus.query(expr, at=now)  # raises on any error or warning
            missing = reads_missing_metric(query.expr, present)
            if missing:
                waiting.setdefault(", ".join(sorted(missing)), []).append(f"{query.panel} {query.ref_id}")
                continue
            if not result:
                empty.append((query.panel, query.ref_id))
                continue
            if "histogram_quantile" in query.expr:
                assert_finite(query, route, result)
    report("panel queries waiting for proposed metrics", waiting)
    assert sorted(set(empty) - MAY_BE_EMPTY.keys()) == []
    print(f"empty, as allowed: {sorted(set(empty))}")


def assert_finite(query: PanelQuery, route: str, result: list[dict[str, Any]]) -> None:
    values = [float(sample["value"][1]) for sample in result]
    assert values and all(math.isfinite(v) for v in values), (query, route, result)


def report(title: str, items: dict[str, list[str]]) -> None:
    print(f"{title}:")
    for key, where in items.items():
        print(f"  {key}: {', '.join(where)}")


def test_the_figures_match_the_load(loaded: Loaded) -> None:
    """The numbers the outcome panels draw from are the worker's real counts."""
    samples = loaded.prometheus.query(f'sum by (route, outcome) (watcher_records_total{{job="{JOB}"}})')
    counts = {(s["metric"]["route"], s["metric"]["outcome"]): float(s["value"][1]) for s in samples}
    assert counts == {
        ("logged", "ok"): LOAD["logs/"],
        ("processed", "ok"): LOAD["ok/"],
        ("rejected", "permanent"): LOAD["bad/"],
        ("flaky", "retry"): LOAD["retry/"] * MAX_RECEIVE_COUNT,
        ("jobs", "ok"): LOAD["jobs/"],
        ("fire", "ok"): LOAD["events/"],
    }
    http = loaded.prometheus.query(f'sum by (status) (watcher_http_requests_total{{job="{JOB}"}})')
    assert {s["metric"]["status"]: float(s["value"][1]) for s in http} == {"503": 1, "200": LOAD["events/"]}
    errors = loaded.prometheus.query(f'sum by (stage) (watcher_errors_total{{job="{JOB}"}})')
    failed_units = LOAD["bad/"] + LOAD["retry/"] * MAX_RECEIVE_COUNT
    assert {s["metric"]["stage"]: float(s["value"][1]) for s in errors} == {"handler": failed_units}
    skipped = loaded.prometheus.query(f'watcher_records_skipped_total{{job="{JOB}", reason="test_event"}}')
    assert [float(s["value"][1]) for s in skipped] == [TEST_EVENTS]


def test_every_alert_expression_evaluates_and_only_the_failing_routes_alert(loaded: Loaded) -> None:
    present = exported(loaded)
    waiting: dict[str, list[str]] = {}
    for alert in alerts():
        result = loaded.prometheus.query(alert.expr)
        missing = reads_missing_metric(alert.expr, present)
        expected = ALERTING.get(alert.name)
        if missing:
            waiting.setdefault(", ".join(sorted(missing)), []).append(alert.name)
            assert result == [], f"{alert.name} reads metrics that do not exist: it must return nothing"
            continue
        expected = expected or ALERTING_ONCE_ADDED.get(alert.name)
        if expected is None:
            assert result == [], f"{alert.name} should not fire: {result}"
            continue
        assert result, f"{alert.name} should be pending or firing after this load"
        for label, values in expected.items():
            if values is not None:
                assert {s["metric"][label] for s in result} == values, alert.name
    report("alerts waiting for proposed metrics", waiting)


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
