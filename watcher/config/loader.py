"""Loading a configuration: YAML -> ``WATCHER_*`` overrides -> ``${...}`` references -> typed readers
that collect every problem -> frozen ``Config`` (watcher.config.schema).

Every problem found is reported at once, each naming its route and field
(``routes[0] (fire-insights).suffix: ...``). ``WATCHER_<SECTION>_<FIELD>`` environment variables
override scalars of the top-level sections (``WATCHER_QUEUE_URL``, ``WATCHER_METRICS_PORT``), and
``WATCHER_<FIELD>`` the top-level scalars (``WATCHER_RAW_KEYS``).

The loader knows nothing of handlers: the caller (watcher.app, the composition root) passes the
checks of each route's handler options and of the routes as a whole (cycles).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from watcher.config.fields import Fields, check_unknown
from watcher.config.refs import Lookup, resolve_tree
from watcher.config.schema import (
    DEFAULT_EVENTS,
    DELIVERIES,
    EVENT_LOOPS,
    SECTION_TYPES,
    SECTIONS,
    TOP_LEVEL_SCALARS,
    AwsConfig,
    Config,
    HandlerSpec,
    IdempotencyConfig,
    LambdaConfig,
    LoggingConfig,
    MetricsConfig,
    QueueConfig,
    RouteConfig,
    WorkerConfig,
)
from watcher.errors import ConfigError

HandlerCheck = Callable[[HandlerSpec], list[str]]  # problems, each ".field: message"
RoutesCheck = Callable[[tuple[RouteConfig, ...]], list[str]]  # run once every route is valid
_ROUTE_FIELDS = ("name", "bucket", "prefix", "suffix", "events", "handler", "timeout_seconds")


def read_document(path: str | os.PathLike[str]) -> Any:
    """The YAML document of a configuration file (``{}`` when empty)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror or exc}"], source) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source) from None
    return document if document is not None else {}


def overridden_document(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The file's document with the ``WATCHER_*`` overrides applied, references not resolved: what
    the configuration refers to (``watcher render terraform`` lists the secrets)."""
    document = read_document(path)
    if not isinstance(document, dict):
        raise ConfigError(["the top level must be a mapping"], str(path))
    return _apply_environment(document, os.environ if environ is None else environ, [])


def parse_config(
    document: Any,
    source: str = "config",
    environ: Mapping[str, str] | None = None,
    *,
    handler_problems: HandlerCheck,
    route_problems: RoutesCheck,
    read_secret_stores: bool = True,
) -> Config:
    if not isinstance(document, dict):
        raise ConfigError(["the top level must be a mapping"], source)
    problems: list[str] = []
    environ = os.environ if environ is None else environ
    document = _apply_environment(document, environ, problems)
    raw_document = document
    lookup = Lookup(environ, _aws_hint(document, environ), read_secret_stores=read_secret_stores)
    document = resolve_tree(document, "", problems, lookup)
    check_unknown(document, (*SECTIONS, *TOP_LEVEL_SCALARS, "routes", "delivery"), "", problems)

    f = Fields(problems)
    aws_doc = f.section(document, "aws", AwsConfig)
    aws = AwsConfig(
        region=f.string(aws_doc, "aws", "region", "us-east-1"),
        endpoint_url=f.optional_string(aws_doc, "aws", "endpoint_url"),
        profile=f.optional_string(aws_doc, "aws", "profile"),
    )
    q = f.section(document, "queue", QueueConfig)
    queue = QueueConfig(
        url=f.optional_string(q, "queue", "url"),
        name=f.optional_string(q, "queue", "name"),
        dlq_url=f.optional_string(q, "queue", "dlq_url"),
        wait_time_seconds=f.integer(q, "queue", "wait_time_seconds", 20, 0, 20),
        visibility_timeout=f.integer(q, "queue", "visibility_timeout", 120, 2, 43200),
        max_in_flight=f.integer(q, "queue", "max_in_flight", 16, 1, 10000),
        max_receive_count=f.integer(q, "queue", "max_receive_count", 5, 1, 1000),
    )
    if not queue.url and not queue.name:
        problems.append("queue: set url or name")
    w = f.section(document, "worker", WorkerConfig)
    worker = WorkerConfig(
        shutdown_grace_seconds=f.number(w, "worker", "shutdown_grace_seconds", 30.0, 0, 86400),
        retry_initial_seconds=f.number(w, "worker", "retry_initial_seconds", 10.0, 0, 43200),
        retry_max_seconds=f.number(w, "worker", "retry_max_seconds", 900.0, 0, 43200),
        default_timeout_seconds=f.optional_number(w, "worker", "default_timeout_seconds"),
        event_loop=f.choice(w, "worker", "event_loop", "auto", EVENT_LOOPS),
    )
    m = f.section(document, "metrics", MetricsConfig)
    metrics = MetricsConfig(
        port=f.integer(m, "metrics", "port", 9400, 0, 65535),
        host=f.string(m, "metrics", "host", "0.0.0.0"),
        queue_poll_seconds=f.number(m, "metrics", "queue_poll_seconds", 30.0, 1, 86400),
    )
    lg = f.section(document, "logging", LoggingConfig)
    logging_config = LoggingConfig(
        level=f.choice(lg, "logging", "level", "info", ("debug", "info", "warning", "error")),
        format=f.choice(lg, "logging", "format", "auto", ("auto", "json", "console")),
    )
    idempotency = _parse_idempotency(document, f, environ) if "idempotency" in document else None
    lambda_config = _parse_lambda(document, f) if "lambda" in document else None
    routes = _parse_routes(document.get("routes"), f, raw_document.get("routes"), handler_problems)
    raw_keys = f.boolean(document, "", "raw_keys", False)
    delivery = _parse_delivery(document.get("delivery"), routes, problems)
    if not problems:  # every route is known good: now the checks of the routes as a whole
        problems.extend(route_problems(routes))
    if problems:
        raise ConfigError(problems, source)
    return Config(
        aws, queue, worker, metrics, logging_config, routes, raw_keys, source, idempotency, delivery, lambda_config
    )


def _parse_delivery(value: Any, routes: tuple[RouteConfig, ...], problems: list[str]) -> Mapping[str, str]:
    """``delivery: {bucket: direct | sns | eventbridge}``, for buckets the routes name."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        problems.append("delivery: must be a mapping of bucket names to direct, sns or eventbridge")
        return MappingProxyType({})
    buckets = {route.bucket for route in routes if route.bucket}
    for bucket, shape in value.items():
        if shape not in DELIVERIES:
            problems.append(f"delivery.{bucket}: must be one of {', '.join(DELIVERIES)}, got {shape!r}")
        elif bucket not in buckets:
            problems.append(f"delivery.{bucket}: no route names this bucket")
    return MappingProxyType({str(k): str(v) for k, v in value.items()})


def _parse_lambda(document: dict[str, Any], f: Fields) -> LambdaConfig:
    """The section is on when present, even empty (``lambda: {}``): a configuration for Lambda."""
    doc = f.section(document, "lambda", LambdaConfig)
    namespace = f.string(doc, "lambda", "metrics_namespace", "watcher")
    if not 1 <= len(namespace) <= 255:
        f.bad("lambda", "metrics_namespace", "must be 1 to 255 characters")
    return LambdaConfig(
        max_concurrency=f.integer(doc, "lambda", "max_concurrency", 10, 1, 10000),
        reserve_seconds=f.number(doc, "lambda", "reserve_seconds", 2.0, 0, 60),
        metrics_namespace=namespace,
    )


def _parse_idempotency(document: dict[str, Any], f: Fields, environ: Mapping[str, str]) -> IdempotencyConfig:
    """The section is on when present, even empty (``idempotency: {}``): SQLite with defaults."""
    doc = f.section(document, "idempotency", IdempotencyConfig)
    backend = f.choice(doc, "idempotency", "backend", "sqlite", ("sqlite", "dynamodb"))
    lease = doc.get("lease_seconds")
    return IdempotencyConfig(
        backend=backend,
        path=f.string(doc, "idempotency", "path", "") or str(default_state_dir(environ) / "idempotency.db"),
        table=f.string(doc, "idempotency", "table", "watcher-idempotency"),
        endpoint_url=f.optional_string(doc, "idempotency", "endpoint_url"),
        completed_ttl_seconds=f.integer(doc, "idempotency", "completed_ttl_seconds", 604800, 60, 10 * 365 * 86400),
        lease_seconds=None if lease is None else f.integer(doc, "idempotency", "lease_seconds", 120, 2, 43200),
    )


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """Where a worker keeps what must survive restarts: systemd's ``$STATE_DIRECTORY`` (first entry),
    else ``$XDG_STATE_HOME/watcher``, else ``~/.local/state/watcher``."""
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    if environ.get("XDG_STATE_HOME"):
        return Path(environ["XDG_STATE_HOME"]) / "watcher"
    return Path(environ.get("HOME") or Path.home()) / ".local" / "state" / "watcher"


def _aws_hint(document: dict[str, Any], environ: Mapping[str, str]) -> AwsConfig:
    """The aws section, resolved on its own, for the resolvers of AWS references elsewhere in the
    file (its problems are reported by the full parse)."""
    section = resolve_tree(document.get("aws"), "aws", [], Lookup(environ))
    if not isinstance(section, dict):
        return AwsConfig()
    text = {k: v for k, v in section.items() if isinstance(v, str) and v}
    return AwsConfig(text.get("region", "us-east-1"), text.get("endpoint_url"), text.get("profile"))


def _parse_routes(value: Any, f: Fields, raw_value: Any, handler_problems: HandlerCheck) -> tuple[RouteConfig, ...]:
    problems = f.problems
    if value is None or value == []:
        problems.append("routes: at least one route is required")
        return ()
    if not isinstance(value, list):
        problems.append("routes: must be a list of routes")
        return ()
    routes: list[RouteConfig] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        where = f"routes[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        name = item.get("name")
        if isinstance(name, str) and name:
            where = f"{where} ({name})"
        check_unknown(item, _ROUTE_FIELDS, where, problems)
        route_name = f.name(item, where, "name")
        if isinstance(name, str) and name:  # a missing name is reported once, not also as a duplicate
            if route_name in seen:
                problems.append(f"{where}.name: duplicate route name {route_name!r}")
            seen.add(route_name)
        events = f.string_list(item, where, "events", DEFAULT_EVENTS)
        for event in events:
            if not event.startswith("s3:"):
                problems.append(f"{where}.events: {event!r} is not an S3 event type (s3:...)")
        handler_doc = item.get("handler")
        if not isinstance(handler_doc, dict) or not isinstance(handler_doc.get("type"), str):
            problems.append(f"{where}.handler: must be a mapping with a type, e.g. {{type: log}}")
            handler = HandlerSpec("invalid")
        else:
            options = {k: v for k, v in handler_doc.items() if k != "type"}
            raw_options = _raw_handler_options(raw_value, index)
            handler = HandlerSpec(handler_doc["type"], MappingProxyType(options), MappingProxyType(raw_options))
            problems.extend(f"{where}.handler{p}" for p in handler_problems(handler))
        routes.append(
            RouteConfig(
                name=route_name,
                handler=handler,
                bucket=f.optional_string(item, where, "bucket"),
                prefix=f.string(item, where, "prefix", ""),
                suffix=f.string(item, where, "suffix", ""),
                events=events,
                timeout_seconds=f.optional_number(item, where, "timeout_seconds"),
            )
        )
    return tuple(routes)


def _raw_handler_options(raw_routes: Any, index: int) -> dict[str, Any]:
    try:
        handler = raw_routes[index]["handler"]
    except (IndexError, KeyError, TypeError):
        return {}
    return {k: v for k, v in handler.items() if k != "type"} if isinstance(handler, dict) else {}


# ``section_field`` of the text fields: their overrides are taken as text, not read as YAML.
_TEXT_FIELDS = frozenset(
    f"{section}_{item.name}"
    for section, cls in SECTION_TYPES.items()
    for item in fields(cls)
    if item.type in ("str", "str | None", str, str | None)
)


def _apply_environment(document: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """Apply ``WATCHER_*`` overrides; values are read as YAML scalars (``20``, ``true``), except for
    text fields, which keep the text (``WATCHER_QUEUE_NAME=2024`` names the queue "2024")."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in document.items()}
    for variable, text in sorted(environ.items()):
        if not variable.startswith("WATCHER_"):
            continue
        name = variable[len("WATCHER_") :].lower()
        value: Any
        if name in _TEXT_FIELDS:
            value = text
        else:
            try:
                value = yaml.safe_load(text) if text else ""
            except yaml.YAMLError:
                value = text
        if isinstance(value, dict | list):
            problems.append(f"{variable}: overrides take a scalar, not {type(value).__name__}")
            continue
        if name in TOP_LEVEL_SCALARS:
            merged[name] = value
            continue
        for section in SECTIONS:
            if name.startswith(section + "_"):
                if merged.get(section) is None:  # an empty `queue:` section still takes overrides
                    merged[section] = {}
                target = merged[section]
                if isinstance(target, dict):
                    target[name[len(section) + 1 :]] = value
                break
    return merged
