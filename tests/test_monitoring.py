"""The Prometheus alerts (deploy/prometheus/alerts.yml) pass `promtool check rules` and their unit
tests (`promtool test rules`, deploy/prometheus/alerts_test.yml), which cover every alert firing and
not firing; the Grafana dashboard (deploy/grafana/watcher-dashboard.json) is importable and shows
what operators need. Both read only metrics watcher exports.

Whether every expression evaluates against a live worker: tests/test_monitoring_integration.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.process import REPO
from tests.support.prometheus import (
    ALERTS,
    ALERTS_TEST,
    MISSING_PROMTOOL,
    PROMTOOL,
    alerts,
    dashboard,
    exported_sample_names,
    metric_names,
    panel_queries,
    panels,
    promtool,
    runbook_url,
    variable_queries,
    with_every_expr,
)

needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=MISSING_PROMTOOL)

ALERT_NAMES = [alert.name for alert in alerts()]


# --- alerts


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in result.stdout


@needs_promtool
def test_the_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def expectations() -> dict[str, dict[str, int]]:
    """For each alert, how many evaluations of alerts_test.yml expect it firing / not firing."""
    counts: dict[str, dict[str, int]] = {}
    for case in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            kind = "firing" if check.get("exp_alerts") else "silent"
            counts.setdefault(check["alertname"], {"firing": 0, "silent": 0})[kind] += 1
    return counts


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_alert_is_tested_firing_and_not_firing(name: str) -> None:
    counts = expectations().get(name, {"firing": 0, "silent": 0})
    assert counts["firing"] >= 1, f"no case where {name} fires"
    assert counts["silent"] >= 1, f"no case where {name} must stay silent"


@needs_promtool
@pytest.mark.parametrize(
    ("expr", "failing_kind"),
    [("vector(1) < 0", "never fires"), ('label_replace(vector(1), "job", "watcher", "", "")', "always fires")],
    ids=["never-fires", "always-fires"],
)
def test_the_unit_tests_fail_for_every_alert_whose_expression_is_wrong(
    tmp_path: Path, expr: str, failing_kind: str
) -> None:
    """The same tests on a copy of the rules whose every expression never fires, or always fires:
    every alert must be reported failing, so no alert's tests pass whatever its expression."""
    with_every_expr(ALERTS, expr, tmp_path / "alerts.yml")
    (tmp_path / "alerts_test.yml").write_text(ALERTS_TEST.read_text())
    result = promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert result.returncode != 0
    unreported = [name for name in ALERT_NAMES if f"alertname: {name}," not in result.stdout + result.stderr]
    assert unreported == [], f"tests still pass when every expression {failing_kind}"


@pytest.mark.parametrize("alert", alerts(), ids=ALERT_NAMES)
def test_every_alert_says_how_bad_what_and_where_to_look(alert: Any) -> None:
    assert alert.duration, "a for: so that one bad scrape does not page"
    assert alert.labels.get("severity") in ("critical", "warning")
    assert alert.annotations.keys() >= {"summary", "description", "runbook"}
    assert alert.annotations["runbook"] == runbook_url(alert.name)
    heading = f"#### Runbook: {alert.name}\n"
    assert heading in (REPO / "README.md").read_text(), f"the runbook link leads nowhere: no {heading!r} in README.md"


def test_the_alerts_cover_what_operators_need() -> None:
    exprs = {alert.name: alert.expr for alert in alerts()}
    wanted = {
        "WatcherDown": "up{",
        "WatcherNotReady": "watcher_ready",
        "WatcherBacklogGrowing": 'watcher_sqs_queue_messages{state="visible"}',
        "WatcherDLQNotEmpty": "watcher_sqs_dlq_messages",
        "WatcherDeadLettering": "watcher_sqs_messages_dead_lettered_total",
        "WatcherRouteErrorRatio": "watcher_records_total",
        "WatcherHeartbeatFailing": 'stage="heartbeat"',
        "WatcherLagHigh": "watcher_sqs_lag_seconds_bucket",
        "WatcherOldestMessageOld": "watcher_sqs_oldest_message_age_seconds",
    }
    assert {name: fragment in exprs.get(name, "") for name, fragment in wanted.items()} == dict.fromkeys(wanted, True)
    assert "watcher_sqs_messages_deleted_total" in exprs["WatcherBacklogGrowing"]


# --- metric names


def used_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used (alerts and dashboard panels)."""
    used: dict[str, set[str]] = {}
    for alert in alerts():
        for name in metric_names(alert.expr):
            used.setdefault(name, set()).add(f"alert {alert.name}")
    for query in panel_queries():
        for name in metric_names(query.expr):
            used.setdefault(name, set()).add(f"panel {query.panel!r}")
    for variable, definition in variable_queries().items():
        for name in metric_names(definition):
            used.setdefault(name, set()).add(f"variable ${variable}")
    return used


def test_alerts_and_panels_read_only_metrics_watcher_exports() -> None:
    exported = exported_sample_names()
    unknown = {name: sorted(where) for name, where in used_metrics().items() if name not in exported}
    assert unknown == {}


def test_the_metrics_added_for_operators_are_used() -> None:
    """Readiness, the DLQ's depth, the oldest message held and max_in_flight were added for these."""
    added = {"watcher_ready", "watcher_sqs_dlq_messages", "watcher_sqs_oldest_message_age_seconds"}
    added.add("watcher_sqs_max_in_flight")
    assert added <= exported_sample_names()
    assert added <= used_metrics().keys()


# --- the dashboard


def test_the_dashboard_is_importable_with_a_prometheus_datasource_input() -> None:
    board = dashboard()
    assert [(i["name"], i["type"], i["pluginId"]) for i in board["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]
    assert board["schemaVersion"] >= 36
    assert board["uid"] and board["title"] and board.get("id") is None
    required_panels = {r["id"] for r in board["__requires"] if r["type"] == "panel"}
    assert {panel["type"] for panel in panels(board)} <= required_panels
    datasources = [panel["datasource"] for panel in panels(board)]
    datasources += [target["datasource"] for panel in panels(board) for target in panel["targets"]]
    datasources += [variable["datasource"] for variable in board["templating"]["list"]]
    assert all(ds == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"} for ds in datasources)


def test_the_dashboard_filters_on_job_instance_and_route() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert list(variables) == ["job", "instance", "route"]
    assert all(v["multi"] and v["includeAll"] and v["allValue"] == ".*" for v in variables.values())
    for query in panel_queries(board):
        if "watcher_" in query.expr or "up{" in query.expr:
            assert 'job=~"$job"' in query.expr and 'instance=~"$instance"' in query.expr, query
        if "route" in query.expr and "watcher_records_skipped" not in query.expr:
            assert 'route=~"$route"' in query.expr, query


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    board = dashboard()
    every = board["panels"]
    ids = [panel["id"] for panel in every]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in every:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_the_dashboard_shows_what_operators_need() -> None:
    exprs = "\n".join(query.expr for query in panel_queries())
    for needed in (
        "rate(watcher_sqs_messages_received_total",  # throughput
        "rate(watcher_sqs_messages_deleted_total",
        "watcher_sqs_messages_in_flight",  # in flight vs max
        "watcher_sqs_max_in_flight",
        "watcher_sqs_queue_messages",  # queue and DLQ depth
        "watcher_sqs_dlq_messages",
        "watcher_sqs_lag_seconds_bucket",  # lag
        "sum by (route, outcome) (rate(watcher_records_total",  # outcomes per route
        "sum by (route, runtime, result) (rate(watcher_container_jobs_total",  # container jobs by result
        "sum by (route, status) (rate(watcher_http_requests_total",  # HTTP requests by status
        "sum by (stage) (rate(watcher_errors_total",  # errors by stage
    ):
        assert needed in exprs, needed
    heatmaps = [panel for panel in panels() if panel["type"] == "heatmap"]
    assert [(p["repeat"], p["targets"][0]["format"]) for p in heatmaps] == [("route", "heatmap")]
    assert "watcher_handler_duration_seconds_bucket" in heatmaps[0]["targets"][0]["expr"]
