"""The Terraform variables of tests/fixtures/terraform say what their watcher config asks for: the
filters of each bucket merged as `watcher provision` merges them, the queue settings, where routes
read and write, the secrets they reference. (`watcher render terraform` is to produce exactly this
from the YAML; until then this keeps the two hand-written files honest.) No Terraform needed."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.support.terraform import FIXTURES
from watcher.config.schema import DEFAULT_EVENTS, HandlerSpec, RouteConfig
from watcher.notifications import filters_for_bucket, routes_by_bucket


def _routes(config: dict[str, Any]) -> list[RouteConfig]:
    return [
        RouteConfig(
            name=route["name"],
            handler=HandlerSpec(route["handler"]["type"]),
            bucket=route["bucket"],
            prefix=route.get("prefix", ""),
            suffix=route.get("suffix", ""),
            events=tuple(route.get("events", DEFAULT_EVENTS)),
        )
        for route in config["routes"]
    ]


def test_the_three_shapes_variables_are_what_their_config_asks_for() -> None:
    text = (FIXTURES / "three-shapes.yaml").read_text()
    config = yaml.safe_load(text)
    variables = json.loads((FIXTURES / "three-shapes.auto.tfvars.json").read_text())
    routes = _routes(config)

    assert variables["queue_name"] == config["queue"]["name"]
    assert variables["visibility_timeout_seconds"] == config["queue"]["visibility_timeout"]
    assert variables["receive_wait_time_seconds"] == config["queue"]["wait_time_seconds"]
    by_bucket = routes_by_bucket(routes)
    assert sorted(variables["buckets"]) == sorted(by_bucket)
    for bucket, bucket_routes in by_bucket.items():
        merged = [
            {"prefix": f.prefix, "suffix": f.suffix, "events": list(f.events)}
            for f in filters_for_bucket(bucket_routes)
        ]
        assert variables["buckets"][bucket]["filters"] == merged, bucket
    assert {b: v["delivery"] for b, v in variables["buckets"].items()} == {
        "watcher-tf-data-lake": "direct",
        "watcher-tf-media": "sns",
        "watcher-tf-archive": "eventbridge",
    }

    def locations(pairs: Any) -> list[tuple[str, str]]:
        return sorted((p["bucket"], p["prefix"]) for p in pairs)

    assert locations(variables["read_locations"]) == sorted((r.bucket or "", r.prefix) for r in routes)
    outputs = [
        re.fullmatch(r"s3://([^/]+)/(.*)", route["handler"]["output"])
        for route in config["routes"]
        if route["handler"]["type"] == "container"
    ]
    assert locations(variables["write_locations"]) == sorted((m.group(1), m.group(2)) for m in outputs if m)
    assert variables["secret_names"] == re.findall(r"\$\{secretsmanager:([^}#]+)", text)
    assert variables["ssm_parameter_names"] == re.findall(r"\$\{ssm:([^}]+)\}", text)
    assert variables["idempotency_table"] is None
