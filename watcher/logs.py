"""structlog setup: JSON lines (console rendering on a TTY), per-unit context from contextvars, and
secrets masked before anything is written.

Our own events take the short road: a level-filtering bound logger (a disabled level costs one
method call), a few processors, orjson, and bytes written straight to stdout. Lines from libraries
(botocore's warnings, say) go through the standard ``logging`` module and come out in the same
format with a ``logger`` field.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

_secrets: set[str] = set()
# Field names that hold secrets: masked by name in logs, and registered as secrets by watcher.refs.
SECRET_NAME = re.compile(r"token|secret|password|passwd|credential|api_?key|access_?key|auth", re.I)
MASK = "***"
# Field names seen, by whether they name a secret (a small vocabulary; see _is_secret_name).
_secret_names: set[str] = set()
_plain_names: set[str] = set()
_level = logging.NOTSET  # the lowest level written, once configured
# The fields bound for this task's lines (message, unit, handler): one dict, replaced on each bind.
_fields: ContextVar[dict[str, Any] | None] = ContextVar("watcher_log_fields", default=None)


def bind_log_fields(**fields: Any) -> None:
    """Add fields to every later line of this task and of the tasks it starts, as structlog's
    ``bind_contextvars`` does. They live in one context variable holding a dict, copied on write (a
    task started earlier keeps what it saw): the worker binds nine fields per message, and one
    variable costs a third of nine."""
    current = _fields.get()
    _fields.set({**current, **fields} if current else fields)


def log_fields() -> dict[str, Any]:
    """What this task's lines carry besides their own fields: ours, and structlog's context
    variables (which a ``python`` handler may bind too; ours win a name bound both ways). Merged
    into lines by ``configure_logging``'s processors: structlog unconfigured merges only its own."""
    return {**structlog.contextvars.get_contextvars(), **(_fields.get() or {})}


def _merge_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    fields = _fields.get()
    if fields:
        if fields.keys().isdisjoint(event_dict):
            event_dict.update(fields)
        else:
            for key, value in fields.items():
                event_dict.setdefault(key, value)  # the line's own fields win
    return event_dict


def register_secret(value: str) -> None:
    """Remember a secret value: it is masked wherever it appears in a log event."""
    if len(value) >= 4:
        _secrets.add(value)


def mask_secrets(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _is_secret_name(name: str) -> bool:
    if name in _plain_names:
        return False
    if name in _secret_names:
        return True
    secret = SECRET_NAME.search(name) is not None
    (_secret_names if secret else _plain_names).add(name)
    return secret


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value) if _secrets else value
    if isinstance(value, dict):
        return {k: MASK if _is_secret_name(str(k)) else _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, tuple):  # kept a tuple: an ``exc_info`` tuple must stay one for format_exc_info
        return tuple(_mask(v) for v in value)
    return value


_NESTED = (dict, list, tuple)
_SCALARS = frozenset((str, int, float, bool, type(None)))  # exact types: a subclass takes the long way


def _mask_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # On every line: the names are looked at one by one only when one is new or names a secret (a
    # set test in C otherwise); then only a nested value (names inside) or, once secrets are
    # registered, a string needs a look; everything else is left as it is.
    if not event_dict.keys() <= _plain_names:
        for key in event_dict:
            if _is_secret_name(key):
                event_dict[key] = MASK
    strings = bool(_secrets)
    if not strings and _SCALARS.issuperset(map(type, event_dict.values())):
        return event_dict  # nothing nested, no secret value to look for
    for key, value in event_dict.items():
        if value is not MASK and (isinstance(value, _NESTED) or (strings and isinstance(value, str))):
            event_dict[key] = _mask(value)
    return event_dict


def _final_mask(_: WrappedLogger, __: str, rendered: Any) -> Any:
    # A secret can also reach the output through a formatted exception or a stdlib message.
    if not _secrets:
        return rendered
    if isinstance(rendered, bytes):
        return mask_secrets(rendered.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    return mask_secrets(rendered) if isinstance(rendered, str) else rendered


def _json_bytes(event_dict: EventDict, **_: Any) -> bytes:
    return orjson.dumps(event_dict, default=str, option=orjson.OPT_NON_STR_KEYS)


def _render_json(_: WrappedLogger, __: str, event_dict: EventDict) -> bytes:
    # structlog's JSONRenderer with our serializer, less its indirection: this runs on every line.
    return _json_bytes(event_dict)


def _json_text(event_dict: EventDict, **_: Any) -> str:
    return _json_bytes(event_dict).decode("utf-8")


class UtcTimestamp:
    """A processor: ``timestamp`` as ``2026-11-30T07:49:46.318640Z`` (always six digits of
    microseconds). The date and time are formatted once per second: structlog's ISO stamper builds
    and formats a timezone-aware datetime on every line, twice the cost, on the worker's one line
    per message."""

    def __init__(self, key: str = "timestamp") -> None:
        self._key = key
        self._second: tuple[int, str] = (-1, "")  # one tuple, swapped whole: safe across threads

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        event_dict[self._key] = f"{cached[1]}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and the stdlib root logger to write one event per line to stdout."""
    global _level
    use_console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    _level = logging.getLevelName(level.upper())
    timestamper = UtcTimestamp()
    merge: list[Processor] = [_merge_fields, structlog.contextvars.merge_contextvars]
    ours: list[Processor] = [*merge, structlog.processors.add_log_level, timestamper]
    if use_console:
        ours += [_mask_processor, structlog.dev.ConsoleRenderer(colors=True), _final_mask]
        factory: Any = structlog.WriteLoggerFactory(sys.stdout)
    else:
        ours += [
            structlog.processors.format_exc_info,
            _mask_processor,
            _render_json,
            _final_mask,
        ]
        factory = structlog.BytesLoggerFactory(sys.stdout.buffer)
    structlog.configure(
        processors=ours,
        logger_factory=factory,
        wrapper_class=structlog.make_filtering_bound_logger(_level),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard logging module: rendered the same way, with their name.
    foreign: list[Processor] = [
        *merge,
        structlog.processors.add_log_level,
        timestamper,
        structlog.stdlib.ExtraAdder(),
        structlog.stdlib.add_logger_name,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=foreign,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _mask_processor,
            structlog.processors.format_exc_info if not use_console else _identity,
            structlog.dev.ConsoleRenderer(colors=True)
            if use_console
            else structlog.processors.JSONRenderer(serializer=_json_text),
            _final_mask,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_level)
    # The SDKs are chatty at INFO/DEBUG; their warnings still come through.
    for noisy in ("botocore", "aiobotocore", "boto3", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _identity(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return event_dict


def log_enabled(level: int) -> bool:
    """Whether an event at ``level`` would be written: lets hot paths skip building an event the
    logger would drop. True while structlog is unconfigured (unit tests, library use), where
    structlog's default logger writes every level."""
    return level >= _level or not structlog.is_configured()


def get_logger(name: str) -> FilteringBoundLogger:
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger
