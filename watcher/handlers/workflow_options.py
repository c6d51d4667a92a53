"""Options of the ``workflow`` handler: validation, templates and response extraction.

Templates use ``str.format`` syntax restricted to plain placeholders (``{dataset_uri}``; ``{{`` is a
literal brace): no attribute or index access, no conversions or format specs, and only known names,
so that every mistake is found when the configuration is loaded rather than on the first event.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from watcher.routing import Unit

PLACEHOLDERS = (
    "bucket",
    "key",
    "dataset",
    "dataset_uri",
    "uri",
    "etag",
    "size",
    "event_time",
    "request_id",
    "route",
)
POLL_PLACEHOLDERS = (*PLACEHOLDERS, "execution_id")
METHODS = ("POST", "PUT", "PATCH", "GET", "DELETE")
DEFAULT_PARAMETERS = "--var datapath={dataset_uri}"
DEFAULT_SUCCESS = ("COMPLETED",)
DEFAULT_FAILURE = ("FAILED", "KILLED", "STOPPED")
FIELDS = (
    "url",
    "method",
    "token",
    "headers",
    "body",
    "workflow_id",
    "timeout_seconds",
    "retry",
    "poll",
    "ca_bundle",
    "verify_tls",
    "idempotency_key",
)
RETRY_FIELDS = ("attempts", "max_seconds", "initial_seconds", "max_wait_seconds")
POLL_FIELDS = ("url", "execution_id", "status", "success", "failure", "interval_seconds", "timeout_seconds")
_formatter = string.Formatter()


# --- templates ---------------------------------------------------------------------------------


def template_problems(text: str, where: str, allowed: tuple[str, ...] = PLACEHOLDERS) -> list[str]:
    """Problems with one template string, each ``where: message``."""
    try:
        pieces = list(_formatter.parse(text))
    except ValueError as exc:
        return [f"{where}: not a valid template ({exc}; write {{{{ and }}}} for literal braces)"]
    problems = []
    for _, name, spec, conversion in pieces:
        if name is None:
            continue
        if name not in allowed:
            problems.append(f"{where}: unknown placeholder {{{name}}} (known: {', '.join(allowed)})")
        elif spec or conversion:
            problems.append(f"{where}: placeholder {{{name}}} takes no conversion or format spec")
    return problems


def render(text: str, values: Mapping[str, str], quote_values: bool = False) -> str:
    """Fill a template checked by ``template_problems``; ``quote_values`` percent-encodes (URLs)."""
    out: list[str] = []
    for literal, name, _, _ in _formatter.parse(text):
        out.append(literal)
        if name is not None:
            value = values[name]
            out.append(quote(value, safe="/") if quote_values else value)
    return "".join(out)


def render_tree(node: Any, values: Mapping[str, str]) -> Any:
    """Fill every string of a JSON body template (keys are left as written)."""
    if isinstance(node, str):
        return render(node, values)
    if isinstance(node, dict):
        return {k: render_tree(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [render_tree(v, values) for v in node]
    return node


def _tree_problems(node: Any, where: str) -> list[str]:
    if isinstance(node, str):
        return template_problems(node, where)
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _tree_problems(v, f"{where}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _tree_problems(v, f"{where}[{i}]")]
    if node is None or isinstance(node, bool | int | float):
        return []
    return [f"{where}: cannot be sent as JSON ({type(node).__name__})"]


def placeholder_values(unit: Unit) -> dict[str, str]:
    record = unit.record
    return {
        "bucket": record.bucket,
        "key": record.key,
        "dataset": unit.dataset,
        "dataset_uri": unit.dataset_uri,
        "uri": record.uri,
        "etag": record.etag or "",
        "size": "" if record.size is None else str(record.size),
        "event_time": record.event_time or "",
        "request_id": unit.request_id,
        "route": unit.route.name,
    }


# --- where a value is in a response ------------------------------------------------------------


def path_problems(spec: Any, where: str) -> list[str]:
    if not isinstance(spec, str) or not (spec == "$body" or (spec.startswith("$.") and len(spec) > 2)):
        return [f'{where}: must be "$body" (the whole response body) or a JSON field such as "$.id"']
    if spec.startswith("$.") and any(not part for part in spec[2:].split(".")):
        return [f"{where}: empty field name in {spec!r}"]
    return []


def extract(spec: str, body: str) -> str | None:
    """The value ``spec`` points at in a response body: ``$body`` is the whole body (surrounding
    whitespace and quotes removed), ``$.a.b`` a field of a JSON object. None when absent or empty."""
    if spec == "$body":
        value = body.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].strip()
        return value or None
    try:
        node: Any = json.loads(body)
    except ValueError:
        return None
    for part in spec[2:].split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, str | int | float):
        return None
    text = str(node).strip()
    return text or None


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    max_seconds: float = 90.0
    initial_seconds: float = 1.0
    max_wait_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class PollOptions:
    url: str
    execution_id: str = "$body"
    status: str = "$body"
    success: tuple[str, ...] = DEFAULT_SUCCESS
    failure: tuple[str, ...] = DEFAULT_FAILURE
    interval_seconds: float = 15.0
    timeout_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class WorkflowOptions:
    url: str
    method: str = "POST"
    token: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # a JSON template, a text template, or None for no body
    timeout_seconds: float = 30.0
    retry: RetryPolicy = RetryPolicy()
    poll: PollOptions | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    idempotency_key: bool = True


class _Reader:
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def number(self, doc: Mapping[str, Any], where: str, name: str, default: float, minimum: float = 0) -> float:
        value = doc.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= minimum:
            self.problems.append(f"{where}.{name}: must be a number above {minimum:g}")
            return default
        return float(value)

    def integer(self, doc: Mapping[str, Any], where: str, name: str, default: int) -> int:
        value = doc.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.problems.append(f"{where}.{name}: must be a whole number of at least 1")
            return default
        return value

    def boolean(self, doc: Mapping[str, Any], name: str, default: bool) -> bool:
        value = doc.get(name, default)
        if not isinstance(value, bool):
            self.problems.append(f".{name}: must be true or false")
            return default
        return value

    def mapping(self, doc: Mapping[str, Any], name: str, where: str, known: tuple[str, ...]) -> Mapping[str, Any]:
        value = doc.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.append(f"{where}: must be a mapping")
            return {}
        unknown = [k for k in value if k not in known]
        self.problems.extend(f"{where}.{k}: unknown field (known: {', '.join(known)})" for k in unknown)
        return value

    def statuses(self, doc: Mapping[str, Any], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = doc.get(name, list(default))
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.problems.append(f".poll.{name}: must be a non-empty list of status names")
            return default
        return tuple(v.upper() for v in value)


def _url_problems(value: Any, where: str, allowed: tuple[str, ...]) -> list[str]:
    if not isinstance(value, str) or not value:
        return [f"{where}: required, e.g. https://fire.example.com/api/v1/workflow/execute"]
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [f"{where}: must be an http:// or https:// URL"]
    return template_problems(value, where, allowed)


def parse_options(options: Mapping[str, Any]) -> tuple[WorkflowOptions | None, list[str]]:
    """The options as a ``WorkflowOptions``, or None with every problem (``.field: message``)."""
    problems = [f".{k}: unknown field (known: {', '.join(FIELDS)})" for k in options if k not in FIELDS]
    read = _Reader(problems)
    url = options.get("url")
    problems.extend(_url_problems(url, ".url", PLACEHOLDERS))
    method = options.get("method", "POST")
    if not isinstance(method, str) or method.upper() not in METHODS:
        problems.append(f".method: must be one of {', '.join(METHODS)}")
        method = "POST"
    method = method.upper()
    token = options.get("token")
    if token is not None and (not isinstance(token, str) or not token):
        problems.append(".token: must be a string, e.g. ${secretsmanager:fire/token}")
    headers = options.get("headers") or {}
    if not isinstance(headers, dict):
        problems.append(".headers: must be a mapping of header names to strings")
        headers = {}
    for name, value in headers.items():
        if not isinstance(value, str):
            problems.append(f".headers.{name}: must be a string")
        else:
            problems.extend(template_problems(value, f".headers.{name}"))
    body = _body(options, method, problems)
    timeout = read.number(options, "", "timeout_seconds", 30.0)
    retry_doc = read.mapping(options, "retry", ".retry", RETRY_FIELDS)
    retry = RetryPolicy(
        attempts=read.integer(retry_doc, ".retry", "attempts", 6),
        max_seconds=read.number(retry_doc, ".retry", "max_seconds", 90.0),
        initial_seconds=read.number(retry_doc, ".retry", "initial_seconds", 1.0),
        max_wait_seconds=read.number(retry_doc, ".retry", "max_wait_seconds", 30.0),
    )
    poll = None
    if options.get("poll") is not None:
        poll_doc = read.mapping(options, "poll", ".poll", POLL_FIELDS)
        problems.extend(_url_problems(poll_doc.get("url"), ".poll.url", POLL_PLACEHOLDERS))
        execution_id = poll_doc.get("execution_id", "$body")
        problems.extend(path_problems(execution_id, ".poll.execution_id"))
        status = poll_doc.get("status", "$body")
        problems.extend(path_problems(status, ".poll.status"))
        poll = PollOptions(
            url=str(poll_doc.get("url", "")),
            execution_id=str(execution_id),
            status=str(status),
            success=read.statuses(poll_doc, "success", DEFAULT_SUCCESS),
            failure=read.statuses(poll_doc, "failure", DEFAULT_FAILURE),
            interval_seconds=read.number(poll_doc, ".poll", "interval_seconds", 15.0),
            timeout_seconds=read.number(poll_doc, ".poll", "timeout_seconds", 3600.0),
        )
        if set(poll.success) & set(poll.failure):
            problems.append(".poll: a status cannot be both a success and a failure")
    ca_bundle = options.get("ca_bundle")
    if ca_bundle is not None and (not isinstance(ca_bundle, str) or not Path(ca_bundle).expanduser().is_file()):
        problems.append(f".ca_bundle: no such file: {ca_bundle!r}")
    verify_tls = read.boolean(options, "verify_tls", True)
    idempotency_key = read.boolean(options, "idempotency_key", True)
    if problems:
        return None, problems
    parsed = WorkflowOptions(
        url=str(url),
        method=method,
        token=token,
        headers=dict(headers),
        body=body,
        timeout_seconds=timeout,
        retry=retry,
        poll=poll,
        ca_bundle=str(Path(ca_bundle).expanduser()) if isinstance(ca_bundle, str) else None,
        verify_tls=verify_tls,
        idempotency_key=idempotency_key,
    )
    return parsed, []


def _body(options: Mapping[str, Any], method: str, problems: list[str]) -> Any:
    if "body" in options:
        body = options["body"]
        problems.extend(_tree_problems(body, ".body"))
        if "workflow_id" in options:
            problems.append(".workflow_id: only used by the default body; put it in body instead")
        return body
    workflow_id = options.get("workflow_id")
    if workflow_id is None:
        if method in ("GET", "DELETE"):
            return None
        problems.append(".workflow_id: required when no body is given (the default body is the Sparkflows one)")
        return None
    if isinstance(workflow_id, bool) or not isinstance(workflow_id, str | int):
        problems.append(".workflow_id: must be a string or a number")
        return None
    if isinstance(workflow_id, str):
        problems.extend(template_problems(workflow_id, ".workflow_id"))
    return {"workflowId": workflow_id, "parameters": DEFAULT_PARAMETERS}
