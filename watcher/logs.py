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
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

_secrets: set[str] = set()
# Field names that hold secrets: masked by name in logs, and registered as secrets by watcher.refs.
SECRET_NAME = re.compile(r"token|secret|password|passwd|credential|api_?key|access_?key|auth", re.I)
MASK = "***"
_secret_names: dict[str, bool] = {}  # field name -> whether it names a secret (a small vocabulary)
_level = logging.NOTSET  # the lowest level written, once configured


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
    found = _secret_names.get(name)
    if found is None:
        found = _secret_names[name] = bool(SECRET_NAME.search(name))
    return found


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value) if _secrets else value
    if isinstance(value, dict):
        return {k: MASK if _is_secret_name(str(k)) else _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


_NESTED = (dict, list, tuple)


def _mask_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # On every line: only a secret's name, a nested value (names inside) or, once secrets are
    # registered, a string needs a look; everything else is left as it is.
    strings = bool(_secrets)
    for key, value in event_dict.items():
        if _is_secret_name(key):
            event_dict[key] = MASK
        elif isinstance(value, _NESTED) or (strings and isinstance(value, str)):
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


def _json_text(event_dict: EventDict, **_: Any) -> str:
    return _json_bytes(event_dict).decode("utf-8")


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and the stdlib root logger to write one event per line to stdout."""
    global _level
    use_console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    _level = logging.getLevelName(level.upper())
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    ours: list[Processor] = [structlog.contextvars.merge_contextvars, structlog.processors.add_log_level, timestamper]
    if use_console:
        ours += [_mask_processor, structlog.dev.ConsoleRenderer(colors=True), _final_mask]
        factory: Any = structlog.WriteLoggerFactory(sys.stdout)
    else:
        ours += [
            structlog.processors.format_exc_info,
            _mask_processor,
            structlog.processors.JSONRenderer(serializer=_json_bytes),
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
        structlog.contextvars.merge_contextvars,
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
