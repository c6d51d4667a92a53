"""``${source:argument}`` references in configuration values.

``${env:NAME}`` (``${env:NAME:-default}`` for a default) and ``${file:PATH}`` are built in; further
sources (Secrets Manager, SSM) register themselves in ``RESOLVERS``. ``$${`` escapes a literal ``${``.
A value resolved into a field whose name says it is a secret (token, password, ...), or by a
resolver for a secret store, is remembered by ``watcher.logs`` so that it is masked if it ever
reaches a log line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from watcher.logs import SECRET_NAME, register_secret

Resolver = Callable[[str, Mapping[str, str]], str]  # (argument, environment the config is loaded with)
_REFERENCE = re.compile(r"\$(\$?)\{([a-zA-Z][a-zA-Z0-9_]*):([^}]*)\}")
_SECRET_FIELD = SECRET_NAME
# Sources whose every value is a secret: they register it themselves when resolving.
SECRET_SOURCES: set[str] = set()
# The AWS settings (a watcher.config.AwsConfig) that resolvers of AWS sources use: set while a
# configuration is resolved, and by a handler re-resolving a reference.
AWS_SETTINGS: ContextVar[Any] = ContextVar("watcher_refs_aws_settings", default=None)


class ReferenceError_(ValueError):
    """A reference could not be resolved; the message says which and why (never its value)."""


def _from_env(argument: str, environ: Mapping[str, str]) -> str:
    name, has_default, default = argument.partition(":-")
    value = environ.get(name)
    if value is None:
        if has_default:
            return default
        raise ReferenceError_(f"environment variable {name} is not set")
    return value


def _from_file(argument: str, _environ: Mapping[str, str]) -> str:
    path = Path(argument).expanduser()
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ReferenceError_(f"cannot read {path}: {exc.strerror or exc}") from None


RESOLVERS: dict[str, Resolver] = {"env": _from_env, "file": _from_file}


def resolve_string(value: str, *, secret: bool = False, environ: Mapping[str, str] | None = None) -> str:
    """Replace every reference in ``value``; raise ``ReferenceError_`` naming the first bad one.

    ``${env:...}`` reads ``environ`` when given (the mapping the config was loaded with), else the
    process environment.
    """

    def substitute(match: re.Match[str]) -> str:
        escaped, source, argument = match.groups()
        if escaped:
            return match.group(0)[1:]
        resolver = RESOLVERS.get(source)
        if resolver is None:
            known = ", ".join(sorted(RESOLVERS))
            raise ReferenceError_(f"unknown reference source {source!r} (known: {known})")
        resolved = resolver(argument, os.environ if environ is None else environ)
        if secret or source in SECRET_SOURCES:
            register_secret(resolved)
        return resolved

    return _REFERENCE.sub(substitute, value)


def resolve_tree(node: Any, path: str, problems: list[str], environ: Mapping[str, str] | None = None) -> Any:
    """Resolve references in every string of a YAML tree; append ``path: reason`` on failure."""
    if isinstance(node, str):
        field_name = path.rsplit(".", 1)[-1]
        try:
            return resolve_string(node, secret=bool(_SECRET_FIELD.search(field_name)), environ=environ)
        except ReferenceError_ as exc:
            problems.append(f"{path}: {exc}")
            return node
    if isinstance(node, dict):
        return {k: resolve_tree(v, f"{path}.{k}" if path else str(k), problems, environ) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_tree(v, f"{path}[{i}]", problems, environ) for i, v in enumerate(node)]
    return node
