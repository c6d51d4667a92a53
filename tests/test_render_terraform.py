"""`watcher render terraform` turns a configuration into deploy/terraform's variables, written nowhere
twice: each bucket's filters merged exactly as `watcher provision` merges them, the queue's settings,
where routes read (routes whose handler reads the object) and write (container outputs), the
secrets and parameters referenced (never read: they may not exist yet), the idempotency table.
tests/fixtures/terraform/three-shapes.auto.tfvars.json, which the Terraform tests apply, is its
output for three-shapes.yaml."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.terraform import FIXTURES
from tests.test_worker_integration import run_cli
from watcher.app import load_config
from watcher.notifications import filters_for_bucket, routes_by_bucket


def render(path: Path) -> dict[str, Any]:
    result = run_cli("render", "terraform", "-c", str(path))
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = json.loads(result.stdout)
    return rendered


def test_the_three_shapes_fixture_is_what_render_makes_of_its_config() -> None:
    path = FIXTURES / "three-shapes.yaml"
    assert render(path) == json.loads((FIXTURES / "three-shapes.auto.tfvars.json").read_text())


def test_the_variables_say_what_the_config_asks_for() -> None:
    path = FIXTURES / "three-shapes.yaml"
    text = path.read_text()
    variables = render(path)
    config = load_config(path, read_secret_stores=False)
    assert variables["queue_name"] == config.queue.name
    assert variables["visibility_timeout_seconds"] == config.queue.visibility_timeout == 120
    assert variables["max_receive_count"] == config.queue.max_receive_count == 5
    for bucket, routes in routes_by_bucket(config.routes).items():
        merged = [
            {"prefix": f.prefix, "suffix": f.suffix, "events": list(f.events)} for f in filters_for_bucket(routes)
        ]
        assert variables["buckets"][bucket]["filters"] == merged, bucket
    assert {b: v["delivery"] for b, v in variables["buckets"].items()} == {
        "watcher-tf-data-lake": "direct",
        "watcher-tf-media": "sns",
        "watcher-tf-archive": "eventbridge",
    }
    # Only the container job reads its object; only it writes.
    assert variables["read_locations"] == [{"bucket": "watcher-tf-data-lake", "prefix": "raw/"}]
    assert variables["write_locations"] == [{"bucket": "watcher-tf-data-lake", "prefix": "reports/"}]
    assert variables["secret_names"] == re.findall(r"\$\{secretsmanager:([^}#]+)", text)
    assert variables["ssm_parameter_names"] == re.findall(r"\$\{ssm:([^}]+)\}", text)
    assert variables["idempotency_table"] is None


def test_overlapping_filters_are_merged_and_the_idempotency_table_named(tmp_path: Path) -> None:
    config = {
        "queue": {"url": "http://127.0.0.1:4566/000000000000/events", "max_receive_count": 3},
        "idempotency": {"backend": "dynamodb", "table": "jobs-done"},
        "routes": [
            {"name": "a", "bucket": "lake", "prefix": "in/", "suffix": ".csv", "handler": {"type": "log"}},
            {"name": "b", "bucket": "lake", "prefix": "in/x/", "handler": {"type": "log"}},
            {"name": "c", "bucket": "lake", "prefix": "in/", "suffix": ".csv", "handler": {"type": "log"},
             "events": ["s3:ObjectRemoved:*"]},
            {"name": "s", "handler": {"type": "workflow", "url": "http://x/run", "workflow_id": 1,
                                      "token": "${secretsmanager:fire#token}"}},
        ],
    }  # fmt: skip
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli("render", "terraform", "-c", str(path))
    variables = json.loads(result.stdout)
    assert variables["queue_name"] == "events" and variables["max_receive_count"] == 3
    assert variables["buckets"] == {
        "lake": {
            "delivery": "direct",
            "filters": [{"prefix": "in/", "suffix": "", "events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}],
        }
    }
    assert variables["secret_names"] == ["fire"] and variables["idempotency_table"] == "jobs-done"
    assert "route s names no bucket" in result.stderr


def test_batch_routes_get_their_queues_definitions_and_staging(tmp_path: Path) -> None:
    container = {"type": "container", "runtime": "batch", "command": "true"}
    config = {
        "queue": {"name": "events"},
        "routes": [
            {"name": "split", "bucket": "media", "prefix": "video/", "handler": {**container, "job_queue": "heavy",
             "job_definition": "ffmpeg:3", "output": "s3://media/frames/"}},
            {"name": "merge", "bucket": "media", "prefix": "parts/", "handler": {**container, "job_queue": "heavy",
             "job_definition": "merge", "output": "s3://media/merged/", "staging": "s3://scratch/jobs/"}},
        ],
    }  # fmt: skip
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(config))
    variables = render(path)
    assert variables["batch_job_queues"] == ["heavy"]
    assert variables["batch_job_definitions"] == ["ffmpeg:3", "merge"]
    assert variables["batch_staging_locations"] == [
        {"bucket": "media", "prefix": "frames/.watcher/batch/"},
        {"bucket": "scratch", "prefix": "jobs/.watcher/batch/"},
    ]
    assert variables["read_locations"] == [
        {"bucket": "media", "prefix": "parts/"},
        {"bucket": "media", "prefix": "video/"},
    ]
