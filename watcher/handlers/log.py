"""The ``log`` handler: writes one line per unit of work and succeeds. For tests, benchmarks and a
first dry run of a routing configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from watcher.config.fields import Fields, check_unknown
from watcher.config.schema import RouteConfig
from watcher.handlers.base import HandlerContext, HandlerDefaults
from watcher.logs import get_logger, log_enabled
from watcher.routing import Unit

_log = get_logger("watcher.handlers.log")
_LEVELS = {"debug": 10, "info": 20, "warning": 30}


class LogHandler(HandlerDefaults):
    type_name: ClassVar[str] = "log"

    def __init__(self, level: str) -> None:
        self._level = _LEVELS[level]

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[str]:
        problems: list[str] = []
        check_unknown(options, ("level",), ".", problems)
        Fields(problems).choice(options, ".", "level", "info", tuple(_LEVELS))
        return problems

    @classmethod
    def create(cls, route: RouteConfig, options: Mapping[str, Any], context: HandlerContext) -> LogHandler:
        return cls(str(options.get("level", "info")))

    async def handle(self, unit: Unit) -> None:
        if not log_enabled(self._level):
            return  # nothing would be written: skip building the event
        record = unit.record
        _log.log(
            self._level,
            "record",
            dataset_uri=unit.dataset_uri,
            size=record.size,
            etag=record.etag,
            event_name=record.event_name,
            event_time=record.event_time,
        )
