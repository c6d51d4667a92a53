"""Templates of the ``workflow`` handler, and where a value is in a response.

Templates use ``str.format`` syntax restricted to plain placeholders (``{dataset_uri}``; ``{{`` is a
literal brace): no attribute or index access, no conversions or format specs, and only known names,
so that every mistake is found when the configuration is loaded rather than on the first event.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import orjson

from watcher.config.refs import ResolvedText
from watcher.routing import Unit

# Each placeholder and how a unit gives its value.
_VALUES: dict[str, Callable[[Unit], str]] = {
    "bucket": lambda unit: unit.record.bucket,
    "key": lambda unit: unit.record.key,
    "dataset": lambda unit: unit.dataset,
    "dataset_uri": lambda unit: unit.dataset_uri,
    "uri": lambda unit: unit.record.uri,
    "etag": lambda unit: unit.record.etag or "",
    "size": lambda unit: "" if unit.record.size is None else str(unit.record.size),
    "event_time": lambda unit: unit.record.event_time or "",
    "request_id": lambda unit: unit.request_id,
    "route": lambda unit: unit.route.name,
}
PLACEHOLDERS = tuple(_VALUES)
POLL_PLACEHOLDERS = (*PLACEHOLDERS, "execution_id")
_formatter = string.Formatter()


def template_of(text: str) -> str:
    """The template a configured string stands for: values of ``${...}`` references it held are
    text, never placeholders (a secret may hold braces)."""
    return text.template if isinstance(text, ResolvedText) else text


def template_problems(text: str, where: str, allowed: tuple[str, ...] = PLACEHOLDERS) -> list[str]:
    """Problems with one template string, each ``where: message``."""
    try:
        pieces = list(_formatter.parse(template_of(text)))  # not _pieces: it may not parse
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


@lru_cache(maxsize=1024)
def _pieces(template: str) -> tuple[tuple[str, str | None], ...]:
    """A checked template split once into (literal text, placeholder name or None) pairs: a route
    renders the same few templates for every event."""
    return tuple((literal, name) for literal, name, _, _ in _formatter.parse(template))


def render(text: str, values: Mapping[str, str], quote_values: bool = False) -> str:
    """Fill a template checked by ``template_problems``; ``quote_values`` percent-encodes (URLs)."""
    out: list[str] = []
    for literal, name in _pieces(template_of(text)):
        out.append(literal)
        if name is not None:
            value = values[name]
            out.append(quote(value, safe="/") if quote_values else value)
    return "".join(out)


def render_body(body: Any, values: Mapping[str, str]) -> bytes:
    """A body template filled and encoded: a text template as UTF-8, a JSON one with orjson (several
    times faster than json, on every event), or json for what orjson refuses (an integer beyond 64
    bits)."""
    rendered = render_tree(body, values)
    if isinstance(rendered, str):
        return rendered.encode("utf-8")
    try:
        return orjson.dumps(rendered)
    except orjson.JSONEncodeError:
        return json.dumps(rendered).encode("utf-8")


def placeholders_in(node: Any) -> set[str]:
    """The placeholder names a template string, or every string of a JSON body template, uses."""
    if isinstance(node, str):
        return {name for _, name in _pieces(template_of(node)) if name is not None}
    if isinstance(node, dict):
        return set().union(*(placeholders_in(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(placeholders_in(v) for v in node))
    return set()


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


def placeholder_values(unit: Unit, names: Iterable[str] = PLACEHOLDERS) -> dict[str, str]:
    """The values of ``names`` (all the placeholders by default) for one unit; a handler asks only
    for those its templates use (the request id is a hash)."""
    return {name: _VALUES[name](unit) for name in names}


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
