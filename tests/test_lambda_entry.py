"""The Lambda entry point as the runtime calls it, in a fresh interpreter (tests/support/lambda_local.py): the
configuration from the package or ``WATCHER_CONFIG`` plus ``WATCHER_*`` overrides, loaded once per cold start;
structlog JSON lines carrying the Lambda request id, one per message; CloudWatch EMF documents with the Prometheus
names and labels; what a cold start imports. And the configuration side: the ``lambda`` section, the rules of
a Lambda configuration in the shim and in ``watcher check``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tests.support.fixtures import s3_event
from tests.support.lambda_events import batch, ids, write_config
from tests.support.process import REPO
from watcher.app import load_config
from watcher.commands.cli import main
from watcher.errors import ConfigError
from watcher.lambda_ import settings
from watcher.lambda_.emf import EmfWriter

LOG_ROUTE = {"name": "events", "bucket": "lake", "prefix": "events/", "handler": {"type": "log"}}
WORKFLOW_ROUTE = {
    "name": "fire",
    "bucket": "lake",
    "prefix": "fire/",
    "handler": {"type": "workflow", "url": "http://127.0.0.1:9/run", "workflow_id": "1"},
}
HEAVY = ("docker", "aiobotocore", "aiohttp", "tenacity", "boto3", "botocore")


def invoke(
    event: dict[str, Any], environ: dict[str, str], *args: str, importtime: bool = False
) -> tuple[list[dict[str, Any]], str]:
    """Run the entry point on ``event`` in a fresh interpreter: (the JSON lines it printed, its stderr)."""
    event_file = Path(environ["LAMBDA_TASK_ROOT"]) / "event.json"
    event_file.write_text(json.dumps(event))
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "tests.support.lambda_local"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "AWS_"))}
    result = subprocess.run(
        [*command, str(event_file), *args],
        cwd=REPO,
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def task_root(tmp_path: Path, routes: list[dict[str, Any]], **sections: Any) -> dict[str, str]:
    """A function's code folder holding the configuration where the package puts it."""
    write_config(tmp_path / settings.PACKAGED_CONFIG, routes, **sections)
    return {"LAMBDA_TASK_ROOT": str(tmp_path)}


def test_one_json_line_per_message_carrying_the_lambda_request_id_then_the_emf_metrics(tmp_path: Path) -> None:
    event = batch([s3_event("lake", "events/a.csv"), s3_event("lake", "events/b.csv"), s3_event("lake", "x/c")])
    lines, _ = invoke(event, task_root(tmp_path, [LOG_ROUTE], logging={"level": "warning"}), "--invocations", "2")

    responses = [line["response"] for line in lines if "response" in line]
    assert responses == [{"batchItemFailures": []}] * 2
    logs = [line for line in lines if "event" in line]
    assert logs == []  # level warning: a batch that succeeds writes no line at all

    lines, _ = invoke(event, task_root(tmp_path, [LOG_ROUTE]))
    done = [line for line in lines if line.get("event") == "message done"]
    assert [line["message_id"] for line in done] == ids(event)  # one line per message, in its own context
    request_ids = {line["aws_request_id"] for line in lines if "event" in line and line["event"] != "watcher ready"}
    assert len(request_ids) == 1 and None not in request_ids
    assert done[0]["route"] == "events" and done[0]["outcome"] == "ok" and done[0]["key"] == "events/a.csv"
    assert done[0]["action"] == "deleted_by_lambda" and done[0]["level"] == "info"
    assert done[2]["skipped"] == ["no_route"] and "route" not in done[2]
    ready = next(line for line in lines if line.get("event") == "watcher ready")
    assert ready["config"] == str(tmp_path / "watcher.yaml") and ready["routes"] == ["events"]


def test_the_emf_documents_carry_the_prometheus_names_and_labels_and_count_each_invocation(tmp_path: Path) -> None:
    event = batch([s3_event("lake", "events/a.csv"), s3_event("lake", "events/b.csv"), s3_event("lake", "x/c")])
    environ = task_root(tmp_path, [LOG_ROUTE], lambda_={"metrics_namespace": "Data/Watcher"})
    lines, _ = invoke(event, environ, "--invocations", "2")

    invocations: list[list[dict[str, Any]]] = [[]]
    for line in lines:
        if "response" in line:
            invocations.append([])
        elif "_aws" in line:
            invocations[-1].append(line)
    first, second, after = invocations
    assert after == []
    for documents in (first, second):
        values = {}
        for document in documents:
            (directive,) = document["_aws"]["CloudWatchMetrics"]
            assert directive["Namespace"] == "Data/Watcher"
            assert isinstance(document["_aws"]["Timestamp"], int)
            (dimensions,) = directive["Dimensions"]
            labels = tuple((name, document[name]) for name in dimensions)
            for metric in directive["Metrics"]:
                values[(metric["Name"], labels)] = document[metric["Name"]]
        # counted per invocation, not since the cold start
        assert values[("watcher_records_total", (("outcome", "ok"), ("route", "events")))] == 2
        assert values[("watcher_records_skipped_total", (("reason", "no_route"),))] == 1
        assert values[("watcher_sqs_messages_received_total", ())] == 3
        assert values[("watcher_handler_duration_seconds_count", (("handler", "log"), ("route", "events")))] == 2
        # CloudWatch takes numbers only: a gauge not measured yet (the DLQ depth's NaN) is left out
        assert all(isinstance(value, int | float) and math.isfinite(value) for value in values.values()), values


def test_the_emf_writer_sends_increases_of_counters_and_histograms_and_changed_gauges() -> None:
    registry = CollectorRegistry()
    records = Counter("watcher_records", "units", ["route", "outcome"], registry=registry)
    duration = Histogram("watcher_handler_duration_seconds", "time", ["route"], registry=registry)
    writer = EmfWriter(registry, "watcher")
    assert writer.documents() == []
    records.labels("a", "ok").inc(3)
    duration.labels("a").observe(0.5)
    duration.labels("a").observe(1.5)

    (counts, durations) = writer.documents()
    assert counts["watcher_records_total"] == 3 and (counts["route"], counts["outcome"]) == ("a", "ok")
    assert counts["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "watcher_records_total", "Unit": "Count"}]
    assert durations["watcher_handler_duration_seconds_sum"] == 2.0
    assert durations["watcher_handler_duration_seconds_count"] == 2
    assert {m["Unit"] for m in durations["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {"Seconds", "Count"}
    assert writer.documents() == []  # nothing changed since
    records.labels("a", "ok").inc()
    (again,) = writer.documents()
    assert again["watcher_records_total"] == 1


def test_the_emf_writer_leaves_out_gauges_not_measured_yet() -> None:
    registry = CollectorRegistry()
    depth = Gauge("watcher_sqs_dlq_messages", "DLQ depth", registry=registry)
    depth.set(math.nan)  # as Metrics creates it: unknown until polled
    writer = EmfWriter(registry, "watcher")
    assert writer.documents() == []
    depth.set(4)
    (document,) = writer.documents()
    assert document["watcher_sqs_dlq_messages"] == 4


def test_a_cold_start_of_log_and_workflow_routes_imports_neither_docker_nor_the_aws_sdk(tmp_path: Path) -> None:
    environ = task_root(tmp_path, [LOG_ROUTE])
    lines, stderr = invoke(batch([s3_event("lake", "events/a")]), environ, importtime=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    assert "watcher.lambda_.shim" in imported  # the measurement sees the shim's imports
    assert sorted(name for name in imported if name.split(".")[0] in HEAVY) == []
    ready = next(line for line in lines if line.get("event") == "watcher ready")
    print(f"\n[lambda cold start, log route, this machine] init_ms {ready['init_ms']}")

    environ = task_root(tmp_path, [WORKFLOW_ROUTE])
    _, stderr = invoke(batch([s3_event("lake", "x/a")]), environ, importtime=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    assert {"aiohttp", "tenacity"} <= imported  # what a workflow route needs, and only that
    assert sorted(name for name in imported if name.split(".")[0] in ("docker", "aiobotocore", "boto3")) == []


def test_the_configuration_comes_from_watcher_config_with_watcher_overrides(tmp_path: Path) -> None:
    write_config(tmp_path / "elsewhere.yaml", [LOG_ROUTE], lambda_={"max_concurrency": 4})
    environ = {
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "WATCHER_CONFIG": "elsewhere.yaml",  # relative to the code
        "WATCHER_LAMBDA_MAX_CONCURRENCY": "7",
        "WATCHER_LOGGING_LEVEL": "debug",
    }
    lines, _ = invoke(batch([s3_event("lake", "events/a")]), environ)
    ready = next(line for line in lines if line.get("event") == "watcher ready")
    assert ready["config"] == str(tmp_path / "elsewhere.yaml") and ready["max_concurrency"] == 7
    assert any(line.get("event") == "batch done" for line in lines)  # a debug line


def test_a_configuration_lambda_cannot_run_fails_the_cold_start_naming_the_problem(tmp_path: Path) -> None:
    container = {
        "name": "frames",
        "prefix": "videos/",
        "handler": {"type": "container", "image": "busybox", "command": "true", "output": "s3://out/frames/"},
    }
    write_config(tmp_path / "watcher.yaml", [LOG_ROUTE, container], idempotency={"backend": "sqlite"})
    # Found in the document, before the container handler's own checks (which import the Docker SDK).
    with pytest.raises(ConfigError) as raised:
        settings.load({"LAMBDA_TASK_ROOT": str(tmp_path)})
    (problem,) = raised.value.problems
    assert problem.startswith("routes[1] (frames).handler.runtime: a container route with runtime docker needs")
    assert "use the AWS Batch runtime for this route, or run it in the worker (watcher run)" in problem

    write_config(tmp_path / "watcher.yaml", [LOG_ROUTE], idempotency={"backend": "sqlite"})
    with pytest.raises(ConfigError, match=r"idempotency\.backend: sqlite keeps its file in one execution environment"):
        settings.load({"LAMBDA_TASK_ROOT": str(tmp_path)})


def test_the_refused_cold_start_writes_its_problems_on_one_json_line(tmp_path: Path) -> None:
    container = {"name": "frames", "handler": {"type": "container", "image": "busybox", "command": "true"}}
    write_config(tmp_path / settings.PACKAGED_CONFIG, [LOG_ROUTE, container])
    event = tmp_path / "event.json"
    event.write_text(json.dumps(batch([])))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "AWS_"))}
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.lambda_local", str(event)],
        cwd=REPO,
        env={**env, "LAMBDA_TASK_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "ConfigError" in result.stderr
    (line,) = [json.loads(text) for text in result.stdout.splitlines() if "invalid configuration" in text]
    assert line["level"] == "error" and line["source"] == str(tmp_path / "watcher.yaml")
    assert line["problems"][0].startswith("routes[1] (frames).handler.runtime: a container route with runtime docker")


def test_a_process_runtime_is_refused_too(tmp_path: Path) -> None:
    container = {"name": "stats", "handler": {"type": "container", "runtime": "process", "command": "true"}}
    write_config(tmp_path / "watcher.yaml", [container])
    with pytest.raises(ConfigError, match=r"routes\[0\] \(stats\)\.handler\.runtime: .* runtime process"):
        settings.load({"LAMBDA_TASK_ROOT": str(tmp_path)})


def test_watcher_check_refuses_a_container_route_in_a_lambda_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    container = {"name": "frames", "handler": {"type": "container", "image": "busybox", "command": "true"}}
    path = write_config(tmp_path / "lambda.yaml", [container])
    assert main(["check", "-c", str(path)]) == 2
    assert "routes[0] (frames).handler.runtime: a container route with runtime docker" in capsys.readouterr().err

    worker = tmp_path / "worker.yaml"  # the same route without the lambda section: fine for the worker
    worker.write_text(json.dumps({"queue": {"name": "watcher-events"}, "routes": [container]}))
    assert main(["check", "-c", str(worker)]) == 0
    assert main(["check", "-c", str(write_config(tmp_path / "ok.yaml", [LOG_ROUTE]))]) == 0
    assert "lambda: a configuration for AWS Lambda" in capsys.readouterr().out


def test_the_lambda_section_is_checked_like_the_others(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "a.yaml", [LOG_ROUTE]))
    assert config.lambda_ is not None and config.lambda_.max_concurrency == 10 and config.lambda_.reserve_seconds == 2
    assert config.lambda_.metrics_namespace == "watcher"

    bad = write_config(tmp_path / "b.yaml", [LOG_ROUTE], lambda_={"max_concurrency": 0, "reserve": 1})
    with pytest.raises(ConfigError) as raised:
        load_config(bad)
    assert raised.value.problems == [
        "lambda.reserve: unknown field (did you mean reserve_seconds?)",
        "lambda.max_concurrency: must be between 1 and 10000, got 0",
    ]
    worker = tmp_path / "c.yaml"
    worker.write_text(json.dumps({"queue": {"name": "q"}, "routes": [LOG_ROUTE]}))
    assert load_config(worker).lambda_ is None  # no section: a configuration for the worker
