"""``${source:argument}`` references in configuration values.

``${env:NAME}`` (``${env:NAME:-default}`` for a default) and ``${file:PATH}`` are read here;
``${secretsmanager:NAME}`` and ``${ssm:/path}`` by watcher.config.secrets, imported on first use (it
brings boto3). ``$${`` escapes a literal ``${``. A value resolved into a field whose name says it is
a secret (token, password, ...), or read from a secret store, is remembered by ``watcher.logs`` so
that it is masked if it ever reaches a log line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.config.schema import AwsConfig
from watcher.errors import ReferenceProblem
from watcher.logs import SECRET_NAME, register_secret

_REFERENCE = re.compile(r"\$(\$?)\{([a-zA-Z][a-zA-Z0-9_]*):([^}]*)\}")
# Sources whose every value is a secret.
SECRET_SOURCES = frozenset({"secretsmanager", "ssm"})


@dataclass(frozen=True, slots=True)
class Lookup:
    """What resolvers may use: the environment the configuration is loaded with, the AWS settings
    of its ``aws`` section (for the secret stores), and whether to bypass their cache (a token read
    again after the API refused it)."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    aws: AwsConfig = field(default_factory=AwsConfig)
    fresh: bool = False
    # False: secret stores are not read; their references stay as written (``watcher render``
    # describes a deployment before its secrets exist, from a machine that may not reach them).
    read_secret_stores: bool = True


Resolver = Callable[[str, Lookup], str]


class ResolvedText(str):
    """A string that held references, resolved. ``template`` is the same text with the braces of
    every resolved value doubled: where the string is a template (the workflow handler's URL,
    headers, body), a secret holding ``{`` is text, never a placeholder (nor quoted in an error)."""

    template: str

    def __new__(cls, value: str, template: str) -> ResolvedText:
        text = super().__new__(cls, value)
        text.template = template
        return text


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _from_env(argument: str, lookup: Lookup) -> str:
    name, has_default, default = argument.partition(":-")
    value = lookup.environ.get(name)
    if value is None:
        if has_default:
            return default
        raise ReferenceProblem(f"environment variable {name} is not set")
    return value


def _from_file(argument: str, _lookup: Lookup) -> str:
    path = Path(argument).expanduser()
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ReferenceProblem(f"cannot read {path}: {exc.strerror or exc}") from None


def _from_secrets_manager(argument: str, lookup: Lookup) -> str:
    if not lookup.read_secret_stores:
        return f"${{secretsmanager:{argument}}}"
    from watcher.config import secrets  # on first use: boto3 is not needed by most configurations

    return secrets.from_secrets_manager(argument, lookup.aws, fresh=lookup.fresh)


def _from_ssm(argument: str, lookup: Lookup) -> str:
    if not lookup.read_secret_stores:
        return f"${{ssm:{argument}}}"
    from watcher.config import secrets

    return secrets.from_ssm(argument, lookup.aws, fresh=lookup.fresh)


RESOLVERS: Mapping[str, Resolver] = {
    "env": _from_env,
    "file": _from_file,
    "secretsmanager": _from_secrets_manager,
    "ssm": _from_ssm,
}


def resolve_string(value: str, lookup: Lookup, *, secret: bool = False) -> str:
    """Replace every reference in ``value``; raise ``ReferenceProblem`` naming the first bad one.
    A string that held references comes back as a ``ResolvedText``."""
    if "${" not in value:
        return value
    resolved: list[str] = []
    template: list[str] = []
    end = 0
    for match in _REFERENCE.finditer(value):
        literal = value[end : match.start()]
        resolved.append(literal)
        template.append(literal)
        end = match.end()
        escaped, source, argument = match.groups()
        if escaped:
            resolved.append(match.group(0)[1:])
            template.append(_escape_braces(match.group(0)[1:]))
            continue
        resolver = RESOLVERS.get(source)
        if resolver is None:
            known = ", ".join(sorted(RESOLVERS))
            raise ReferenceProblem(f"unknown reference source {source!r} (known: {known})")
        text = resolver(argument, lookup)
        if secret or source in SECRET_SOURCES:
            register_secret(text)
        resolved.append(text)
        template.append(_escape_braces(text))
    resolved.append(value[end:])
    template.append(value[end:])
    return ResolvedText("".join(resolved), "".join(template))


def resolve_tree(node: Any, path: str, problems: list[str], lookup: Lookup) -> Any:
    """Resolve references in every string of a YAML tree; append ``path: reason`` on failure."""
    if isinstance(node, str):
        field_name = path.rsplit(".", 1)[-1]
        try:
            return resolve_string(node, lookup, secret=bool(SECRET_NAME.search(field_name)))
        except ReferenceProblem as exc:
            problems.append(f"{path}: {exc}")
            return ResolvedText(node, _escape_braces(node))  # reported once, not again as a template
    if isinstance(node, dict):
        return {k: resolve_tree(v, f"{path}.{k}" if path else str(k), problems, lookup) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_tree(v, f"{path}[{i}]", problems, lookup) for i, v in enumerate(node)]
    return node


def references(node: Any) -> list[tuple[str, str]]:
    """Every ``(source, argument)`` referenced in a YAML tree (escaped ones excluded)."""
    if isinstance(node, str):
        return [(source, argument) for escaped, source, argument in _REFERENCE.findall(node) if not escaped]
    if isinstance(node, dict):
        return [found for value in node.values() for found in references(value)]
    if isinstance(node, list):
        return [found for value in node for found in references(value)]
    return []
