"""Spec: ``watcher explain`` shows what the worker would do with one message body, and ``watcher
check`` validates a config, both as a user runs them (a subprocess, real exit codes and streams)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fixtures import fixture_path, load_fixture
from watcher.app import load_config
from watcher.commands.explain import explain
from watcher.errors import MessageFormatError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "config" / "watcher.yaml"
RECORD_FIELDS = ["bucket", "key", "dataset", "dataset_uri", "event_name", "size", "etag", "routes"]


def watcher(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI with an environment free of WATCHER_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    env["PYTHONIOENCODING"] = "utf-8"
    result = subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode("utf-8"), result.stderr.decode("utf-8")
    )


def explain_file(fixture: str) -> dict[str, Any]:
    result = watcher("explain", "-c", str(SAMPLE), str(fixture_path(fixture)))
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


# --- watcher explain ---------------------------------------------------------------------------


def test_explain_a_success_marker() -> None:
    assert explain_file("s3_success_marker") == {
        "records": [
            {
                "bucket": "data-lake",
                "key": "events/2026/11/23/_SUCCESS",
                "dataset": "events/2026/11/23",
                "dataset_uri": "s3://data-lake/events/2026/11/23",
                "event_name": "ObjectCreated:Put",
                "size": 0,
                "etag": "d41d8cd98f00b204e9800998ecf8427e",
                "routes": ["fire-insights"],
            }
        ],
        "skipped": [],
    }


def test_explain_several_records_lists_each_with_its_routes_and_what_is_skipped() -> None:
    output = explain_file("s3_multiple_records")
    assert all(list(record) == RECORD_FIELDS for record in output["records"])
    assert [(r["key"], r["dataset"], r["routes"]) for r in output["records"]] == [
        ("raw/2026/11/23/orders.csv", "raw/2026/11/23/orders.csv", ["raw-csv"]),
        ("events/2026/11/23/part-00000-1c2e.snappy.parquet", "events/2026/11/23/part-00000-1c2e.snappy.parquet", []),
        ("events/2026/11/23/_SUCCESS", "events/2026/11/23", ["fire-insights"]),
    ]
    assert output["skipped"] == [
        {"reason": "no_route", "detail": "s3://data-lake/events/2026/11/23/part-00000-1c2e.snappy.parquet"}
    ]


def test_explain_reads_the_body_from_stdin() -> None:
    result = watcher("explain", "-c", str(SAMPLE), "-", stdin=load_fixture("sns_s3_test_event").encode())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "records": [],
        "skipped": [{"reason": "test_event", "detail": "bucket=amzn-s3-demo-bucket"}],
    }


def test_explain_prints_decoded_keys_as_they_are() -> None:
    result = watcher("explain", "-c", str(SAMPLE), str(fixture_path("sns_s3_put")))
    assert result.returncode == 0, result.stderr
    assert "photos/2026/Happy Face +1 café.jpg" in result.stdout  # not \u00e9, not caf%C3%A9
    (record,) = json.loads(result.stdout)["records"]
    assert record["routes"] == []


def test_explain_of_an_unparseable_body_exits_1_with_a_one_line_error(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"Records": [{"eventVersion": "1.0"}]}')
    result = watcher("explain", "-c", str(SAMPLE), str(body))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("watcher explain: Records[0].eventVersion '1.0' is not 2.x")


def test_explain_of_binary_garbage_exits_1() -> None:
    result = watcher("explain", "-c", str(SAMPLE), "-", stdin=b"\x00\xff\xfe garbage")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("watcher explain: message body is not UTF-8")
    assert "Traceback" not in result.stderr


# --- explain() in process: the same answers, for the cases not worth a subprocess -----------------


@pytest.fixture(scope="module")
def sample_config() -> Any:
    return load_config(SAMPLE, environ={})


@pytest.mark.parametrize(
    ("fixture", "skipped"),
    [
        ("s3_folder_marker", [{"reason": "folder_marker", "detail": "s3://data-lake/events/2026/11/23/"}]),
        (
            "s3_object_removed_delete",
            [{"reason": "event_type", "detail": "s3:ObjectRemoved:Delete s3://data-lake/raw/2026/11/23/orders.csv"}],
        ),
        ("s3_test_event", [{"reason": "test_event", "detail": "bucket=amzn-s3-demo-bucket"}]),
        ("eventbridge_object_created", []),
        ("localstack_put_space_key", []),
    ],
)
def test_explain_skips(sample_config: Any, fixture: str, skipped: list[dict[str, str]]) -> None:
    assert explain(sample_config, load_fixture(fixture))["skipped"] == skipped


def test_explain_routes_a_localstack_key_with_spaces(sample_config: Any) -> None:
    (record,) = explain(sample_config, load_fixture("localstack_put_space_key"))["records"]
    assert record["key"] == "raw/2026/11/23/daily report 2026.csv"
    assert record["routes"] == ["raw-csv"]
    assert record["dataset_uri"] == "s3://data-lake/raw/2026/11/23/daily report 2026.csv"


def test_explain_honours_raw_keys(tmp_path: Path) -> None:
    document = yaml.safe_load(SAMPLE.read_text())
    document["raw_keys"] = True
    path = tmp_path / "raw.yaml"
    path.write_text(yaml.safe_dump(document))
    (record,) = explain(load_config(path, environ={}), load_fixture("localstack_put_space_key"))["records"]
    assert record["key"] == "raw/2026/11/23/daily%20report%202026.csv"


def test_explain_raises_message_format_error_for_bad_bodies(sample_config: Any) -> None:
    with pytest.raises(MessageFormatError):
        explain(sample_config, b"not json")


# --- watcher check -----------------------------------------------------------------------------


def test_check_of_the_sample_config_exits_0() -> None:
    result = watcher("check", "-c", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{SAMPLE}: valid (2 routes: fire-insights, raw-csv)"


def test_check_of_a_broken_config_exits_2_and_prints_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "queue: {wait_time_seconds: 30}\n"
        "routes:\n"
        "  - {name: a, sufix: .csv, handler: {type: log}}\n"
        "  - {name: b, handler: {type: lgo}}\n"
    )
    result = watcher("check", "-c", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"watcher: invalid configuration ({path}):"
    assert lines[1:] == [
        "  - queue.wait_time_seconds: must be between 0 and 20, got 30",
        "  - queue: set url or name",
        "  - routes[0] (a).sufix: unknown field (did you mean suffix?)",
        "  - routes[1] (b).handler.type: unknown handler type 'lgo' (known: container, log, python, workflow)",
    ]


def test_explain_with_a_broken_config_exits_2_too(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("routes: []\n")
    result = watcher("explain", "-c", str(path), str(fixture_path("s3_success_marker")))
    assert result.returncode == 2
    assert "  - routes: at least one route is required" in result.stderr.splitlines()
