"""Spec: the configuration file. It loads into frozen dataclasses with documented defaults, the
environment overrides it, ``${env:...}``/``${file:...}`` references resolve, and every problem is
reported at once, each naming the route and field it is about."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from watcher.app import load_config, parse_config
from watcher.config.schema import DEFAULT_EVENTS, Config
from watcher.errors import ConfigError
from watcher.logs import MASK, mask_secrets

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "config" / "watcher.yaml"
QUEUE_URL = "http://127.0.0.1:4566/000000000000/watcher-events"


def minimal(**extra: Any) -> dict[str, Any]:
    """The smallest valid document: a queue and one route."""
    document: dict[str, Any] = {"queue": {"url": QUEUE_URL}, "routes": [{"name": "a", "handler": {"type": "log"}}]}
    document.update(extra)
    return document


def parse(document: dict[str, Any], environ: dict[str, str] | None = None) -> Config:
    """Parse with an explicit (by default empty) environment, so that the test machine's doesn't leak in."""
    return parse_config(document, "test.yaml", environ or {})


def problems_of(document: Any, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, "test.yaml", environ or {})
    assert caught.value.problems, "a ConfigError must list its problems"
    return caught.value.problems


def one_problem(document: Any, environ: dict[str, str] | None = None) -> str:
    problems = problems_of(document, environ)
    assert len(problems) == 1, problems
    return problems[0]


def secret_value() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


# --- the sample file ---------------------------------------------------------------------------


def test_the_sample_config_loads() -> None:
    config = load_config(SAMPLE, environ={})
    assert config.source == str(SAMPLE)
    assert config.aws.region == "us-east-1"
    assert config.aws.endpoint_url == "http://127.0.0.1:4566"
    assert config.queue.name == "watcher-events"
    assert config.queue.url is None
    assert config.queue.wait_time_seconds == 20
    assert config.queue.visibility_timeout == 120
    assert config.queue.max_in_flight == 16
    assert config.metrics.port == 9400
    assert [(r.name, r.bucket, r.prefix, r.suffix, r.handler.type) for r in config.routes] == [
        ("fire-insights", "data-lake", "events/", "_SUCCESS", "workflow"),
        ("raw-csv", "data-lake", "raw/", ".csv", "container"),
    ]
    assert all(r.events == ("s3:ObjectCreated:*",) for r in config.routes)


def test_the_config_is_frozen() -> None:
    config = load_config(SAMPLE, environ={})
    with pytest.raises(AttributeError):
        config.queue.url = "elsewhere"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.routes[0].handler.options["level"] = "debug"  # type: ignore[index]


# --- defaults ----------------------------------------------------------------------------------


def test_defaults_of_a_minimal_config() -> None:
    config = parse(minimal())
    assert config.aws.region == "us-east-1"
    assert config.aws.endpoint_url is None
    assert config.aws.profile is None
    assert config.queue.url == QUEUE_URL
    assert config.queue.dlq_url is None
    assert config.queue.wait_time_seconds == 20
    assert config.queue.visibility_timeout == 120
    assert config.queue.max_in_flight == 16
    assert config.worker.shutdown_grace_seconds == 30.0
    assert config.worker.retry_initial_seconds == 10.0
    assert config.worker.retry_max_seconds == 900.0
    assert config.worker.default_timeout_seconds is None
    assert config.metrics.port == 9400
    assert config.metrics.host == "0.0.0.0"
    assert config.metrics.queue_poll_seconds == 30.0
    assert (config.logging.level, config.logging.format) == ("info", "auto")
    assert config.raw_keys is False
    (route,) = config.routes
    assert route.bucket is None
    assert (route.prefix, route.suffix) == ("", "")
    assert route.events == DEFAULT_EVENTS == ("s3:ObjectCreated:*",)
    assert route.timeout_seconds is None
    assert dict(route.handler.options) == {}


def test_a_single_event_string_is_a_list_of_one() -> None:
    document = minimal(routes=[{"name": "a", "events": "s3:ObjectRemoved:*", "handler": {"type": "log"}}])
    assert parse(document).routes[0].events == ("s3:ObjectRemoved:*",)


def test_handler_options_are_kept_apart_from_the_type() -> None:
    document = minimal(routes=[{"name": "a", "handler": {"type": "log", "level": "debug"}}])
    handler = parse(document).routes[0].handler
    assert handler.type == "log"
    assert dict(handler.options) == {"level": "debug"}


def test_numbers_are_read_as_numbers() -> None:
    config = parse(minimal(worker={"shutdown_grace_seconds": 5, "default_timeout_seconds": 2.5}))
    assert config.worker.shutdown_grace_seconds == 5.0
    assert isinstance(config.worker.shutdown_grace_seconds, float)
    assert config.worker.default_timeout_seconds == 2.5


# --- environment overrides ---------------------------------------------------------------------


def test_environment_overrides_section_fields_and_top_level_scalars() -> None:
    config = load_config(
        SAMPLE,
        environ={
            "WATCHER_QUEUE_URL": "http://localhost:4566/000000000000/other",
            "WATCHER_METRICS_PORT": "9500",
            "WATCHER_RAW_KEYS": "true",
        },
    )
    assert config.queue.url == "http://localhost:4566/000000000000/other"
    assert config.queue.name == "watcher-events"  # untouched fields stay
    assert config.metrics.port == 9500  # read as a number
    assert config.raw_keys is True  # read as a boolean


def test_environment_overrides_create_a_section_the_file_lacks() -> None:
    config = parse(minimal(), {"WATCHER_LOGGING_LEVEL": "debug", "WATCHER_WORKER_RETRY_MAX_SECONDS": "60"})
    assert config.logging.level == "debug"
    assert config.worker.retry_max_seconds == 60.0


@pytest.mark.parametrize(
    ("variable", "text", "section", "field"),
    [
        ("WATCHER_QUEUE_NAME", "2024", "queue", "name"),  # not the number 2024
        ("WATCHER_QUEUE_NAME", "on", "queue", "name"),  # not the boolean true
        ("WATCHER_QUEUE_NAME", "null", "queue", "name"),  # not nothing at all
        ("WATCHER_AWS_PROFILE", "no", "aws", "profile"),
        ("WATCHER_METRICS_HOST", "0x1", "metrics", "host"),
    ],
)
def test_an_override_of_a_text_field_keeps_its_text(variable: str, text: str, section: str, field: str) -> None:
    config = parse({**minimal(), "queue": {}}, {variable: text, "WATCHER_QUEUE_URL": QUEUE_URL})
    assert getattr(getattr(config, section), field) == text


def test_environment_variables_without_the_prefix_are_ignored() -> None:
    config = parse(minimal(), {"QUEUE_URL": "nope", "METRICS_PORT": "1"})
    assert config.queue.url == QUEUE_URL
    assert config.metrics.port == 9400


def test_a_bad_override_is_reported_like_a_bad_field() -> None:
    problems = problems_of(minimal(), {"WATCHER_METRICS_PORT": "ninety", "WATCHER_RAW_KEYS": "maybe"})
    assert "metrics.port: must be a whole number, got 'ninety'" in problems
    assert "raw_keys: must be true or false, got 'maybe'" in problems


def test_an_override_must_be_a_scalar() -> None:
    assert one_problem(minimal(), {"WATCHER_METRICS_PORT": "[1, 2]"}).startswith("WATCHER_METRICS_PORT: ")


# --- references --------------------------------------------------------------------------------


def test_env_reference() -> None:
    config = parse(minimal(queue={"url": "${env:QUEUE}"}), {"QUEUE": QUEUE_URL})
    assert config.queue.url == QUEUE_URL


def test_env_reference_inside_a_longer_string() -> None:
    config = parse(minimal(queue={"url": "http://${env:HOST}:4566/000000000000/q"}), {"HOST": "localstack"})
    assert config.queue.url == "http://localstack:4566/000000000000/q"


def test_env_reference_with_a_default() -> None:
    document = minimal(aws={"region": "${env:REGION:-eu-west-1}"})
    assert parse(document).aws.region == "eu-west-1"
    assert parse(document, {"REGION": "ap-south-1"}).aws.region == "ap-south-1"


def test_env_reference_reads_the_given_environment_not_the_process_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_TEST_REGION", "from-process")
    document = minimal(aws={"region": "${env:WATCHER_TEST_REGION}"})
    assert parse(document, {"WATCHER_TEST_REGION": "from-mapping"}).aws.region == "from-mapping"
    assert parse_config(document, "test.yaml").aws.region == "from-process"  # no mapping: the process's


def test_a_missing_env_var_is_an_error_naming_the_field_and_variable() -> None:
    problem = one_problem(minimal(queue={"url": "${env:NO_SUCH_QUEUE_VARIABLE}"}))
    assert problem == "queue.url: environment variable NO_SUCH_QUEUE_VARIABLE is not set"


def test_a_missing_env_var_in_a_route_names_the_route_field() -> None:
    document = minimal(routes=[{"name": "a", "bucket": "${env:BUCKET}", "handler": {"type": "log"}}])
    assert one_problem(document) == "routes[0].bucket: environment variable BUCKET is not set"


def test_file_reference_reads_the_file_without_its_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "queue-url").write_text(QUEUE_URL + "\n")
    config = parse(minimal(queue={"url": f"${{file:{tmp_path / 'queue-url'}}}"}))
    assert config.queue.url == QUEUE_URL


def test_an_unreadable_file_reference_is_an_error_naming_the_field(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    problem = one_problem(minimal(queue={"url": f"${{file:{missing}}}"}))
    assert problem.startswith(f"queue.url: cannot read {missing}")


def test_a_doubled_dollar_escapes_a_reference() -> None:
    config = parse(minimal(routes=[{"name": "a", "prefix": "$${env:HOME}/", "handler": {"type": "log"}}]))
    assert config.routes[0].prefix == "${env:HOME}/"


def test_an_unknown_reference_source_is_an_error_listing_the_known_ones() -> None:
    problem = one_problem(minimal(queue={"url": "${vault:queue}"}))
    assert problem == "queue.url: unknown reference source 'vault' (known: env, file, secretsmanager, ssm)"


def test_overrides_may_hold_references() -> None:
    config = parse(minimal(), {"WATCHER_QUEUE_URL": "${env:REAL_QUEUE}", "REAL_QUEUE": QUEUE_URL + "-2"})
    assert config.queue.url == QUEUE_URL + "-2"


def test_a_secret_resolved_into_a_token_field_is_masked_in_logs() -> None:
    token = secret_value()
    document = minimal(
        routes=[
            {
                "name": "notify",
                "handler": {"type": "python", "function": "json:dumps", "options": {"token": "${env:API_TOKEN}"}},
            }
        ]
    )
    config = parse(document, {"API_TOKEN": token})
    assert config.routes[0].handler.options["options"]["token"] == token  # the handler gets the real value
    assert mask_secrets(f"POST /hook Authorization: Bearer {token}") == f"POST /hook Authorization: Bearer {MASK}"


def test_a_value_resolved_into_an_ordinary_field_is_not_masked() -> None:
    queue = f"http://127.0.0.1:4566/000000000000/{uuid.uuid4().hex}"
    parse(minimal(queue={"url": "${env:QUEUE}"}), {"QUEUE": queue})
    assert mask_secrets(f"polling {queue}") == f"polling {queue}"


# --- problems: named, suggested, all at once ---------------------------------------------------


def test_an_unknown_handler_type_names_the_route_by_index_and_name() -> None:
    document = minimal(routes=[{"name": "a", "handler": {"type": "log"}}, {"name": "b", "handler": {"type": "lambda"}}])
    assert (
        one_problem(document)
        == "routes[1] (b).handler.type: unknown handler type 'lambda' (known: container, log, python, workflow)"
    )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (minimal(metrcs={"port": 1}), "metrcs: unknown field (did you mean metrics?)"),
        (minimal(queue={"url": QUEUE_URL, "wait_time": 5}), "queue.wait_time: unknown field (did you mean "),
        (
            minimal(routes=[{"name": "a", "sufix": "x", "handler": {"type": "log"}}]),
            "routes[0] (a).sufix: unknown field (did you mean suffix?)",
        ),
        (
            minimal(routes=[{"name": "a", "handler": {"type": "log", "levle": "debug"}}]),
            "routes[0] (a).handler.levle: unknown field (did you mean level?)",
        ),
        (minimal(queue={"url": QUEUE_URL, "zzz": 1}), "queue.zzz: unknown field (known: url, name, dlq_url, "),
    ],
)
def test_unknown_fields_suggest_the_right_one(document: dict[str, Any], problem: str) -> None:
    assert one_problem(document).startswith(problem)


def test_duplicate_route_names_are_an_error_on_the_second() -> None:
    document = minimal(
        routes=[{"name": "same", "handler": {"type": "log"}}, {"name": "same", "handler": {"type": "log"}}]
    )
    assert one_problem(document) == "routes[1] (same).name: duplicate route name 'same'"


def test_routes_without_names_are_not_also_reported_as_duplicates() -> None:
    problems = problems_of(minimal(routes=[{"handler": {"type": "log"}}, {"handler": {"type": "log"}}]))
    assert [p.split(":")[0] for p in problems] == ["routes[0].name", "routes[1].name"]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (minimal(queue={}), "queue: set url or name"),
        (
            minimal(queue={"url": QUEUE_URL, "wait_time_seconds": 21}),
            "queue.wait_time_seconds: must be between 0 and 20",
        ),
        (minimal(queue={"url": QUEUE_URL, "max_in_flight": "many"}), "queue.max_in_flight: must be a whole number"),
        (minimal(metrics={"port": True}), "metrics.port: must be a whole number, got True"),
        (minimal(logging={"level": "verbose"}), "logging.level: must be one of debug, info, warning, error"),
        (minimal(worker="fast"), "worker: must be a mapping"),
        (minimal(raw_keys="yes"), "raw_keys: must be true or false, got 'yes'"),
        (minimal(routes=[]), "routes: at least one route is required"),
        ({"queue": {"url": QUEUE_URL}}, "routes: at least one route is required"),
        (minimal(routes={"a": {}}), "routes: must be a list of routes"),
        (minimal(routes=["a"]), "routes[0]: must be a mapping"),
        (minimal(routes=[{"name": "has space", "handler": {"type": "log"}}]), "routes[0] (has space).name: required"),
        (minimal(routes=[{"name": "a"}]), "routes[0] (a).handler: must be a mapping with a type"),
        (
            minimal(routes=[{"name": "a", "events": ["ObjectCreated:*"], "handler": {"type": "log"}}]),
            "routes[0] (a).events: 'ObjectCreated:*' is not an S3 event type (s3:...)",
        ),
        (
            minimal(routes=[{"name": "a", "timeout_seconds": 0, "handler": {"type": "log"}}]),
            "routes[0] (a).timeout_seconds: must be a positive number of seconds",
        ),
        (
            minimal(routes=[{"name": "a", "handler": {"type": "python"}}]),
            "routes[0] (a).handler.function: required",
        ),
        (
            minimal(routes=[{"name": "a", "handler": {"type": "python", "function": "no_such_module_xyz:run"}}]),
            "routes[0] (a).handler.function: cannot load 'no_such_module_xyz:run'",
        ),
    ],
)
def test_each_problem_names_its_field(document: dict[str, Any], problem: str) -> None:
    assert one_problem(document).startswith(problem)


def test_all_problems_are_reported_at_once() -> None:
    document = {
        "queue": {"url": 42, "visibility_timeout": 1},
        "metrics": {"port": 70000},
        "routes": [
            {"name": "a", "sufix": ".csv", "handler": {"type": "log"}},
            {"name": "b", "handler": {"type": "nope"}},
            {"name": "a", "handler": {"type": "log", "level": "loud"}},
        ],
    }
    assert problems_of(document) == [
        "queue.url: must be a string, got int",
        "queue.visibility_timeout: must be between 2 and 43200, got 1",
        "queue: set url or name",
        "metrics.port: must be between 0 and 65535, got 70000",
        "routes[0] (a).sufix: unknown field (did you mean suffix?)",
        "routes[1] (b).handler.type: unknown handler type 'nope' (known: container, log, python, workflow)",
        "routes[2] (a).name: duplicate route name 'a'",
        "routes[2] (a).handler.level: must be one of debug, info, warning, got 'loud'",
    ]


def test_the_error_message_names_the_file_and_joins_the_problems() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(minimal(queue={}, metrics={"port": -1}), "/etc/watcher.yaml", {})
    assert str(caught.value).startswith("/etc/watcher.yaml: ")
    assert "queue: set url or name" in str(caught.value)
    assert "metrics.port: must be between 0 and 65535, got -1" in str(caught.value)


# --- files -------------------------------------------------------------------------------------


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.yaml", environ={})


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("queue: {url: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path, environ={})


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_a_file_that_is_not_a_mapping_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.source == str(path)


def test_load_config_reads_yaml_the_same_as_parse_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(minimal(raw_keys=True)))
    loaded = load_config(path, environ={})
    parsed = parse_config(minimal(raw_keys=True), str(path), {})
    assert loaded == parsed
