"""The ``python`` handler: calls a function of yours, ``function: package.module:name``.

The function receives the ``Unit`` and the route's ``options`` mapping. A coroutine function is
awaited; a plain function runs in a worker thread (context copied), so it may block. Raise
``watcher.errors.RetryableError`` / ``PermanentError`` to choose what happens to the message.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from watcher.config.fields import check_unknown
from watcher.config.schema import RouteConfig
from watcher.handlers.base import HandlerContext, HandlerDefaults
from watcher.routing import Unit

_FIELDS = ("function", "options")


def _load(target: str) -> Callable[..., Any]:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError("must look like package.module:function")
    module = importlib.import_module(module_name)
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"{module_name} has no callable {attribute!r}")
    return function  # type: ignore[no-any-return]


class PythonHandler(HandlerDefaults):
    type_name: ClassVar[str] = "python"

    def __init__(self, function: Callable[..., Any], options: Mapping[str, Any]) -> None:
        self._function = function
        self._options = options
        # An object with ``async def __call__`` is a coroutine function too: run in a thread, it
        # would only return an un-awaited coroutine and the unit would "succeed" without working.
        self._is_async = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(type(function).__call__)

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[str]:
        problems: list[str] = []
        check_unknown(options, _FIELDS, ".", problems)
        target = options.get("function")
        if not isinstance(target, str):
            return [*problems, ".function: required, e.g. mypackage.handlers:process"]
        try:
            _load(target)
        except (ImportError, ValueError) as exc:
            problems.append(f".function: cannot load {target!r}: {exc}")
        if not isinstance(options.get("options", {}), dict):
            problems.append(".options: must be a mapping")
        return problems

    @classmethod
    def create(cls, route: RouteConfig, options: Mapping[str, Any], context: HandlerContext) -> PythonHandler:
        return cls(_load(str(options["function"])), dict(options.get("options") or {}))

    async def handle(self, unit: Unit) -> None:
        if self._is_async:
            await self._function(unit, self._options)
        else:
            await asyncio.to_thread(self._function, unit, self._options)
