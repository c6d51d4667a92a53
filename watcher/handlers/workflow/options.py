"""Options of the ``workflow`` handler, validated when the configuration is loaded: every mistake is
reported with its field at start, not on the first event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from watcher.config.fields import Document, Fields, check_unknown
from watcher.handlers.workflow.templates import (
    PLACEHOLDERS,
    POLL_PLACEHOLDERS,
    path_problems,
    template_problems,
    tree_problems,
)

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


def _statuses(f: Fields, doc: Document, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = doc.get(name, list(default))
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        f.bad(".poll", name, "must be a non-empty list of status names")
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
    problems: list[str] = []
    check_unknown(options, FIELDS, ".", problems)
    f = Fields(problems)
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
    timeout = f.above(options, ".", "timeout_seconds", 30.0)
    retry_doc = f.mapping(options, ".", "retry", RETRY_FIELDS)
    retry = RetryPolicy(
        attempts=f.at_least(retry_doc, ".retry", "attempts", 6, 1),
        max_seconds=f.above(retry_doc, ".retry", "max_seconds", 90.0),
        initial_seconds=f.above(retry_doc, ".retry", "initial_seconds", 1.0),
        max_wait_seconds=f.above(retry_doc, ".retry", "max_wait_seconds", 30.0),
    )
    poll = None
    if options.get("poll") is not None:
        poll_doc = f.mapping(options, ".", "poll", POLL_FIELDS)
        problems.extend(_url_problems(poll_doc.get("url"), ".poll.url", POLL_PLACEHOLDERS))
        execution_id = poll_doc.get("execution_id", "$body")
        problems.extend(path_problems(execution_id, ".poll.execution_id"))
        status = poll_doc.get("status", "$body")
        problems.extend(path_problems(status, ".poll.status"))
        poll = PollOptions(
            url=poll_doc.get("url", ""),  # as it is: a str, or ResolvedText (watcher.config.refs)
            execution_id=str(execution_id),
            status=str(status),
            success=_statuses(f, poll_doc, "success", DEFAULT_SUCCESS),
            failure=_statuses(f, poll_doc, "failure", DEFAULT_FAILURE),
            interval_seconds=f.above(poll_doc, ".poll", "interval_seconds", 15.0),
            timeout_seconds=f.above(poll_doc, ".poll", "timeout_seconds", 3600.0),
        )
        if set(poll.success) & set(poll.failure):
            problems.append(".poll: a status cannot be both a success and a failure")
    ca_bundle = options.get("ca_bundle")
    if ca_bundle is not None and (not isinstance(ca_bundle, str) or not Path(ca_bundle).expanduser().is_file()):
        problems.append(f".ca_bundle: no such file: {ca_bundle!r}")
    verify_tls = f.boolean(options, ".", "verify_tls", True)
    idempotency_key = f.boolean(options, ".", "idempotency_key", True)
    if problems:
        return None, problems
    parsed = WorkflowOptions(
        url=url if isinstance(url, str) else "",  # a str, maybe a ResolvedText (its template is read)
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
        problems.extend(tree_problems(body, ".body"))
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
