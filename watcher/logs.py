"""structlog setup: JSON lines (console rendering on a TTY), stdlib loggers rendered the same way,
per-unit context from contextvars, and secrets masked before anything is written."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_secrets: set[str] = set()
# Field names that hold secrets: masked by name in logs, and registered as secrets by watcher.refs.
SECRET_NAME = re.compile(r"token|secret|password|passwd|credential|api_?key|access_?key|auth", re.I)
_SECRET_KEY = SECRET_NAME
MASK = "***"


def register_secret(value: str) -> None:
    """Remember a secret value: it is masked wherever it appears in a log event."""
    if len(value) >= 4:
        _secrets.add(value)


def mask_secrets(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: MASK if _SECRET_KEY.search(str(k)) else _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def _mask_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return {k: MASK if _SECRET_KEY.search(k) else _mask(v) for k, v in event_dict.items()}


def _final_mask(_: WrappedLogger, __: str, rendered: Any) -> Any:
    # A secret can also reach the output through a formatted exception or a stdlib message.
    return mask_secrets(rendered) if _secrets and isinstance(rendered, str) else rendered


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and the stdlib root logger to write one event per line to stdout."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=True)
        if use_console
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # drop disabled levels before any other work
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _mask_processor,
            structlog.processors.format_exc_info if not use_console else _identity,
            renderer,
            _final_mask,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The SDKs are chatty at INFO/DEBUG; their warnings still come through.
    for noisy in ("botocore", "aiobotocore", "boto3", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _identity(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return event_dict


def log_enabled(name: str, level: int) -> bool:
    """Whether an event at ``level`` on logger ``name`` would be written: lets hot paths skip
    building an event that ``filter_by_level`` would drop. True while structlog is unconfigured
    (unit tests, library use), where structlog's default logger writes every level."""
    if not structlog.is_configured():
        return True
    logger = _stdlib_loggers.get(name)
    if logger is None:
        logger = _stdlib_loggers[name] = logging.getLogger(name)
    return logger.isEnabledFor(level)


_stdlib_loggers: dict[str, logging.Logger] = {}


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
