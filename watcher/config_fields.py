"""Typed field readers for config validation: each appends ``path.field: problem`` and returns a
default instead of raising, so that one run reports every problem in the file."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


def check_unknown(document: dict[str, Any], allowed: Iterable[str], where: str, problems: list[str]) -> None:
    allowed = list(allowed)
    for key in document:
        if key in allowed:
            continue
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        suggestion = f" (did you mean {hint[0]}?)" if hint else f" (known: {', '.join(allowed)})"
        problems.append(f"{_join(where, str(key))}: unknown field{suggestion}")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


class Fields:
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def _bad(self, where: str, name: str, message: str) -> None:
        self.problems.append(f"{_join(where, name)}: {message}")

    def section(self, document: dict[str, Any], name: str, cls: type[Any]) -> dict[str, Any]:
        value = document.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self._bad("", name, "must be a mapping")
            return {}
        check_unknown(value, [f.name for f in dataclasses.fields(cls)], name, self.problems)
        return value

    def string(self, doc: dict[str, Any], where: str, name: str, default: str) -> str:
        value = doc.get(name, default)
        if value is None:
            return default
        if not isinstance(value, str):
            self._bad(where, name, f"must be a string, got {type(value).__name__}")
            return default
        return value

    def optional_string(self, doc: dict[str, Any], where: str, name: str) -> str | None:
        value = doc.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self._bad(where, name, f"must be a string, got {type(value).__name__}")
            return None
        return value

    def name(self, doc: dict[str, Any], where: str, name: str) -> str:
        value = doc.get(name)
        if not isinstance(value, str) or not _NAME.match(value):
            self._bad(where, name, "required: letters, digits, '_', '.', '-' (at most 80)")
            return str(value)
        return value

    def boolean(self, doc: dict[str, Any], where: str, name: str, default: bool) -> bool:
        value = doc.get(name, default)
        if not isinstance(value, bool):
            self._bad(where, name, f"must be true or false, got {value!r}")
            return default
        return value

    def integer(self, doc: dict[str, Any], where: str, name: str, default: int, low: int, high: int) -> int:
        value = doc.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self._bad(where, name, f"must be a whole number, got {value!r}")
            return default
        if not low <= value <= high:
            self._bad(where, name, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, doc: dict[str, Any], where: str, name: str, default: float, low: float, high: float) -> float:
        value = doc.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._bad(where, name, f"must be a number, got {value!r}")
            return default
        if not low <= value <= high:
            self._bad(where, name, f"must be between {low:g} and {high:g}, got {value}")
        return float(value)

    def optional_number(self, doc: dict[str, Any], where: str, name: str) -> float | None:
        value = doc.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self._bad(where, name, f"must be a positive number of seconds, got {value!r}")
            return None
        return float(value)

    def choice(self, doc: dict[str, Any], where: str, name: str, default: str, options: tuple[str, ...]) -> str:
        value = doc.get(name, default)
        if value not in options:
            self._bad(where, name, f"must be one of {', '.join(options)}, got {value!r}")
            return default
        return str(value)

    def string_list(self, doc: dict[str, Any], where: str, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = doc.get(name)
        if value is None:
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self._bad(where, name, "must be a non-empty list of strings")
            return default
        return tuple(value)
