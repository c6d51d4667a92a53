"""Templates of the ``workflow`` handler, and where a value is in a response.

Templates use ``str.format`` syntax restricted to plain placeholders (``{dataset_uri}``; ``{{`` is a
literal brace): no attribute or index access, no conversions or format specs, and only known names,
so that every mistake is found when the configuration is loaded rather than on the first event.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from watcher.config.refs import ResolvedText
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
_formatter = string.Formatter()


def template_of(text: str) -> str:
    """The template a configured string stands for: values of ``${...}`` references it held are
    text, never placeholders (a secret may hold braces)."""
    return text.template if isinstance(text, ResolvedText) else text


def template_problems(text: str, where: str, allowed: tuple[str, ...] = PLACEHOLDERS) -> list[str]:
    """Problems with one template string, each ``where: message``."""
    try:
        pieces = list(_formatter.parse(template_of(text)))
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
    for literal, name, _, _ in _formatter.parse(template_of(text)):
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


def tree_problems(node: Any, where: str) -> list[str]:
    if isinstance(node, str):
        return template_problems(node, where)
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in tree_problems(v, f"{where}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in tree_problems(v, f"{where}[{i}]")]
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
