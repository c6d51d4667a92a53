"""The workflow handler's options, templates and response extraction (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from watcher.app import parse_config
from watcher.config.schema import HandlerSpec, RouteConfig
from watcher.errors import ConfigError
from watcher.handlers.workflow.options import DEFAULT_PARAMETERS, parse_options
from watcher.handlers.workflow.templates import (
    PLACEHOLDERS,
    extract,
    placeholder_values,
    placeholders_in,
    render,
    render_body,
    render_tree,
    template_problems,
)
from watcher.records import S3Record
from watcher.routing import Unit

URL = "https://fire.example.com/api/v1/workflow/execute"
POLL_URL = "https://fire.example.com/api/v1/workflow-executions/{execution_id}/status"


def unit(key: str = "events/2026/11/23/_SUCCESS") -> Unit:
    record = S3Record("lake", key, "ObjectCreated:Put", size=0, etag="abc", event_time="2026-11-23T10:00:00Z")
    route = RouteConfig("fire", HandlerSpec("workflow"), prefix="events/", suffix="_SUCCESS")
    return Unit(record, route)


def problems(**options: Any) -> list[str]:
    return parse_options({"url": URL, "workflow_id": "42", **options})[1]


def test_placeholder_values_of_a_success_marker() -> None:
    values = placeholder_values(unit())
    assert values["dataset"] == "events/2026/11/23"
    assert values["dataset_uri"] == "s3://lake/events/2026/11/23"
    assert values["uri"] == "s3://lake/events/2026/11/23/_SUCCESS"
    assert values["size"] == "0" and values["etag"] == "abc" and values["route"] == "fire"
    assert len(values["request_id"]) == 32


def test_default_body_is_the_sparkflows_one() -> None:
    parsed, found = parse_options({"url": URL, "workflow_id": "42"})
    assert not found and parsed is not None
    assert parsed.body == {"workflowId": "42", "parameters": DEFAULT_PARAMETERS}
    assert render_tree(parsed.body, placeholder_values(unit())) == {
        "workflowId": "42",
        "parameters": "--var datapath=s3://lake/events/2026/11/23",
    }
    assert parsed.method == "POST" and parsed.idempotency_key and parsed.verify_tls


def test_render_fills_placeholders_keeps_doubled_braces_and_quotes_urls() -> None:
    values = placeholder_values(unit("in/a b&c/_SUCCESS"))
    assert render("{{literal}} {dataset}", values) == "{literal} in/a b&c"
    assert render("https://x/run?path={dataset}", values, quote_values=True) == "https://x/run?path=in/a%20b%26c"
    tree = {"a": ["{bucket}", 1, None, {"b": "{key}"}]}
    assert render_tree(tree, values) == {"a": ["lake", 1, None, {"b": "in/a b&c/_SUCCESS"}]}


def test_placeholders_in_a_template_and_a_body_tree_are_the_names_it_uses() -> None:
    assert placeholders_in("https://x/{bucket}/run?d={dataset}&again={bucket}") == {"bucket", "dataset"}
    assert placeholders_in({"a": ["{key}", 1, None, {"b": "{{literal}} {etag}"}], "c": "plain"}) == {"key", "etag"}
    assert placeholders_in(None) == set() and placeholders_in("no placeholders") == set()


def test_placeholder_values_asked_for_some_names_gives_exactly_those_and_the_same_values() -> None:
    everything = placeholder_values(unit())
    assert set(everything) == set(PLACEHOLDERS)
    some = placeholder_values(unit(), ("dataset_uri", "request_id"))
    assert some == {"dataset_uri": everything["dataset_uri"], "request_id": everything["request_id"]}


def test_render_body_encodes_json_templates_text_templates_and_integers_beyond_64_bits() -> None:
    values = placeholder_values(unit())
    body = {"path": "{dataset_uri}", "n": 3, "ok": True, "none": None, "list": ["é {bucket}"]}
    assert json.loads(render_body(body, values)) == {
        "path": "s3://lake/events/2026/11/23",
        "n": 3,
        "ok": True,
        "none": None,
        "list": ["é lake"],
    }
    assert render_body("path={dataset} é", values) == "path=events/2026/11/23 é".encode()
    assert json.loads(render_body({"big": 2**70, "p": "{bucket}"}, values)) == {"big": 2**70, "p": "lake"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{dataset_uri}", []),
        ("{nope}", ["f: unknown placeholder {nope} (known: bucket, key, dataset, dataset_uri, uri, etag, size,"]),
        ("{key.upper}", ["f: unknown placeholder {key.upper}"]),
        ("{key!r}", ["f: placeholder {key} takes no conversion or format spec"]),
        ("{size:08d}", ["f: placeholder {size} takes no conversion or format spec"]),
        ("{unclosed", ["f: not a valid template"]),
    ],
)
def test_template_problems(template: str, expected: list[str]) -> None:
    found = template_problems(template, "f")
    assert len(found) == len(expected)
    for problem, prefix in zip(found, expected, strict=True):
        assert problem.startswith(prefix), problem


@pytest.mark.parametrize(
    ("spec", "body", "expected"),
    [
        ("$body", "1234\n", "1234"),
        ("$body", '"abc-1"', "abc-1"),
        ("$body", "  ", None),
        ("$.id", '{"id": 77}', "77"),
        ("$.run.id", '{"run": {"id": "r-1"}}', "r-1"),
        ("$.id", '{"other": 1}', None),
        ("$.id", "not json", None),
        ("$.id", '{"id": null}', None),
        ("$.id", '{"id": true}', None),
        ("$.id", '{"id": {"x": 1}}', None),
        ("$.status", '{"status": "COMPLETED"}', "COMPLETED"),
    ],
)
def test_extract(spec: str, body: str, expected: str | None) -> None:
    assert extract(spec, body) == expected


def test_every_bad_option_is_reported_naming_its_field() -> None:
    found = parse_options(
        {
            "url": "ftp://x/{dataset}",
            "method": "FETCH",
            "token": 5,
            "headers": {"X-Run": "{bogus}", "X-Num": 3},
            "body": {"workflowId": "1", "parameters": "--var p={datasetUri}"},
            "timeout_seconds": 0,
            "retry": {"attempts": 0, "max_seconds": -1, "backoff": 2},
            "poll": {"url": "https://x/{execution}", "execution_id": "id", "success": [], "interval_seconds": "x"},
            "ca_bundle": "/nonexistent/ca.pem",
            "verify_tls": "yes",
            "extra": 1,
        }
    )[1]
    prefixes = [
        ".extra: unknown field",
        ".url: must be an http:// or https:// URL",
        ".method: must be one of POST, PUT, PATCH, GET, DELETE",
        ".token: must be a string",
        ".headers.X-Run: unknown placeholder {bogus}",
        ".headers.X-Num: must be a string",
        ".body.parameters: unknown placeholder {datasetUri}",
        ".timeout_seconds: must be a number above 0",
        ".retry.backoff: unknown field",
        ".retry.attempts: must be a whole number of at least 1",
        ".retry.max_seconds: must be a number above 0",
        ".poll.url: unknown placeholder {execution}",
        '.poll.execution_id: must be "$body"',
        ".poll.success: must be a non-empty list",
        ".poll.interval_seconds: must be a number above 0",
        ".ca_bundle: no such file",
        ".verify_tls: must be true or false",
    ]
    for prefix in prefixes:
        assert any(p.startswith(prefix) for p in found), (prefix, found)
    assert len(found) == len(prefixes), found


def test_a_body_or_a_workflow_id_is_required_for_post() -> None:
    assert parse_options({"url": URL})[1] == [
        ".workflow_id: required when no body is given (the default body is the Sparkflows one)"
    ]
    assert parse_options({"url": URL, "method": "GET"})[1] == []
    assert problems(body={"x": 1}) == [".workflow_id: only used by the default body; put it in body instead"]


def test_poll_options_and_execution_id_placeholder() -> None:
    parsed, found = parse_options(
        {
            "url": URL,
            "workflow_id": 42,
            "poll": {"url": POLL_URL, "execution_id": "$.id", "success": ["done"], "interval_seconds": 0.5},
        }
    )
    assert not found and parsed is not None and parsed.poll is not None
    assert parsed.poll.success == ("DONE",) and parsed.poll.failure == ("FAILED", "KILLED", "STOPPED")
    assert parsed.poll.execution_id == "$.id" and parsed.poll.interval_seconds == 0.5
    assert problems(url=URL + "?id={execution_id}")[0].startswith(".url: unknown placeholder {execution_id}")
    assert problems(poll={"url": POLL_URL, "success": ["X"], "failure": ["x"]}) == [
        ".poll: a status cannot be both a success and a failure"
    ]


def test_config_load_reports_a_bad_placeholder_naming_route_and_field(monkeypatch: pytest.MonkeyPatch) -> None:
    document = {
        "queue": {"url": "https://sqs.us-east-1.amazonaws.com/1/q"},
        "routes": [
            {
                "name": "fire",
                "handler": {"type": "workflow", "url": URL, "body": {"parameters": "--var datapath={dataseturi}"}},
            }
        ],
    }
    with pytest.raises(ConfigError) as error:
        parse_config(document)
    assert error.value.problems == [
        "routes[0] (fire).handler.body.parameters: unknown placeholder {dataseturi} "
        "(known: bucket, key, dataset, dataset_uri, uri, etag, size, event_time, request_id, route)"
    ]


def test_config_keeps_the_token_reference_next_to_its_value() -> None:
    document = {
        "queue": {"url": "https://sqs.us-east-1.amazonaws.com/1/q"},
        "routes": [
            {"name": "fire", "handler": {"type": "workflow", "url": URL, "workflow_id": "1", "token": "${env:FT}"}}
        ],
    }
    config = parse_config(document, environ={"FT": "s3cr3t-token"})
    spec = config.routes[0].handler
    assert spec.options["token"] == "s3cr3t-token"
    assert spec.raw_options["token"] == "${env:FT}"


def test_a_secret_with_braces_in_a_header_is_text_not_a_placeholder() -> None:
    document = {
        "queue": {"url": "https://sqs.us-east-1.amazonaws.com/1/q"},
        "routes": [
            {
                "name": "fire",
                "handler": {
                    "type": "workflow",
                    "url": URL + "?ds={dataset}",
                    "workflow_id": "1",
                    "headers": {"X-Api-Key": "${env:KEY}", "X-Route": "{route}-${env:KEY}"},
                },
            }
        ],
    }
    config = parse_config(document, environ={"KEY": "p{a}ss}"})  # no "unknown placeholder {a}"
    options, problems = parse_options(config.routes[0].handler.options)
    assert problems == [] and options is not None
    unit = Unit(S3Record("b", "d/_SUCCESS", "ObjectCreated:Put"), config.routes[0])
    values = placeholder_values(unit)
    assert render(options.headers["X-Api-Key"], values) == "p{a}ss}"
    assert render(options.headers["X-Route"], values) == "fire-p{a}ss}"


def test_an_unresolvable_reference_in_a_template_is_reported_once() -> None:
    document = {
        "queue": {"url": "https://sqs.us-east-1.amazonaws.com/1/q"},
        "routes": [{"name": "fire", "handler": {"type": "workflow", "url": URL, "workflow_id": "1",
                                                 "headers": {"X-Api-Key": "${env:MISSING}"}}}],
    }  # fmt: skip
    with pytest.raises(ConfigError) as error:
        parse_config(document, environ={})
    assert error.value.problems == ["routes[0].handler.headers.X-Api-Key: environment variable MISSING is not set"]
