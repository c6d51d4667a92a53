"""Typed field readers for config validation: each appends ``path.field: problem`` and returns a
default instead of raising, so that one run reports every problem in the file.

Used by the loader for the file's sections and routes, and by every handler for its options. Paths:
``""`` is the file's top level (``metrics``), a handler's options start at ``"."`` (``.script``), so
that the loader can put them under ``routes[0] (name).handler``."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
Document = Mapping[str, Any]


def check_unknown(document: Document, allowed: Iterable[str], where: str, problems: list[str]) -> None:
    """One problem per field not in ``allowed``, with the closest known name as a hint."""
    allowed = list(allowed)
    for key in document:
        if key in allowed:
            continue
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        suggestion = f" (did you mean {hint[0]}?)" if hint else f" (known: {', '.join(allowed)})"
        problems.append(f"{join(where, str(key))}: unknown field{suggestion}")


def join(where: str, name: str) -> str:
    """``routes[0]`` + ``name`` -> ``routes[0].name``; ``""`` + ``metrics`` -> ``metrics``;
    ``"."`` + ``script`` -> ``.script`` (a handler option)."""
    if not where:
        return name
    return f"{where}{name}" if where.endswith(".") else f"{where}.{name}"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Fields:
    """Readers bound to one list of problems."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def bad(self, where: str, name: str, message: str) -> None:
        self.problems.append(f"{join(where, name)}: {message}")

    def mapping(self, doc: Document, where: str, name: str, known: Iterable[str]) -> Document:
        """A nested mapping (``{}`` when absent), its unknown fields reported."""
        value = doc.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.bad(where, name, "must be a mapping")
            return {}
        check_unknown(value, known, join(where, name), self.problems)
        return value

    def section(self, document: Document, name: str, cls: type[Any]) -> Document:
        """A top-level section whose fields are those of the dataclass ``cls``."""
        return self.mapping(document, "", name, [f.name for f in dataclasses.fields(cls)])

    def string(self, doc: Document, where: str, name: str, default: str) -> str:
        value = doc.get(name, default)
        if value is None:
            return default
        if not isinstance(value, str):
            self.bad(where, name, f"must be a string, got {type(value).__name__}")
            return default
        return value

    def optional_string(self, doc: Document, where: str, name: str) -> str | None:
        value = doc.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.bad(where, name, f"must be a string, got {type(value).__name__}")
            return None
        return value

    def name(self, doc: Document, where: str, name: str) -> str:
        value = doc.get(name)
        if not isinstance(value, str) or not _NAME.match(value):
            self.bad(where, name, "required: letters, digits, '_', '.', '-' (at most 80)")
            return str(value)
        return value

    def boolean(self, doc: Document, where: str, name: str, default: bool) -> bool:
        value = doc.get(name, default)
        if not isinstance(value, bool):
            self.bad(where, name, f"must be true or false, got {value!r}")
            return default
        return value

    def integer(self, doc: Document, where: str, name: str, default: int, low: int, high: int) -> int:
        value = doc.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(where, name, f"must be a whole number, got {value!r}")
            return default
        if not low <= value <= high:
            self.bad(where, name, f"must be between {low} and {high}, got {value}")
        return value

    def at_least(self, doc: Document, where: str, name: str, default: int, low: int) -> int:
        """A whole number of at least ``low``."""
        value = doc.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self.bad(where, name, f"must be a whole number of at least {low}")
            return default
        return value

    def number(self, doc: Document, where: str, name: str, default: float, low: float, high: float) -> float:
        value = doc.get(name, default)
        if not _number(value):
            self.bad(where, name, f"must be a number, got {value!r}")
            return default
        if not low <= value <= high:
            self.bad(where, name, f"must be between {low:g} and {high:g}, got {value}")
        return float(value)

    def above(self, doc: Document, where: str, name: str, default: float, low: float = 0) -> float:
        """A number strictly above ``low``."""
        value = doc.get(name, default)
        if not _number(value) or value <= low:
            self.bad(where, name, f"must be a number above {low:g}")
            return default
        return float(value)

    def optional_number(self, doc: Document, where: str, name: str) -> float | None:
        value = doc.get(name)
        if value is None:
            return None
        if not _number(value) or value <= 0:
            self.bad(where, name, f"must be a positive number of seconds, got {value!r}")
            return None
        return float(value)

    def choice(self, doc: Document, where: str, name: str, default: str, options: tuple[str, ...]) -> str:
        value = doc.get(name, default)
        if value not in options:
            self.bad(where, name, f"must be one of {', '.join(options)}, got {value!r}")
            return default
        return str(value)

    def string_list(self, doc: Document, where: str, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = doc.get(name)
        if value is None:
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.bad(where, name, "must be a non-empty list of strings")
            return default
        return tuple(value)
