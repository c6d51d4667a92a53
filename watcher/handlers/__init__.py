"""Handler registry: ``handler.type`` in a route -> the class that implements it."""

from __future__ import annotations

from collections.abc import Mapping

from watcher.config import AwsConfig, HandlerSpec, RouteConfig
from watcher.handlers.base import Handler, HandlerContext, HandlerType
from watcher.handlers.container import ContainerHandler
from watcher.handlers.log import LogHandler
from watcher.handlers.python import PythonHandler
from watcher.handlers.workflow import WorkflowHandler
from watcher.metrics import Metrics

HANDLER_TYPES: dict[str, type[HandlerType]] = {
    ContainerHandler.type_name: ContainerHandler,
    LogHandler.type_name: LogHandler,
    PythonHandler.type_name: PythonHandler,
    WorkflowHandler.type_name: WorkflowHandler,
}


def validate_handler(spec: HandlerSpec) -> list[str]:
    """Problems with a route's handler block, each starting with ``.field`` or ``.type``."""
    handler_type = HANDLER_TYPES.get(spec.type)
    if handler_type is None:
        return [f".type: unknown handler type {spec.type!r} (known: {', '.join(sorted(HANDLER_TYPES))})"]
    return handler_type.validate(spec.options)


def create_handler(route: RouteConfig, *, metrics: Metrics | None = None, aws: AwsConfig | None = None) -> Handler:
    context = HandlerContext(metrics or Metrics(), aws or AwsConfig())
    return HANDLER_TYPES[route.handler.type].create(route, route.handler.options, context)


async def start_handlers(handlers: Mapping[str, Handler]) -> None:
    """Let the handlers that have a ``start`` prepare before the first message (the container
    handler opens its work area and removes what a crashed worker left behind)."""
    for handler in handlers.values():
        start = getattr(handler, "start", None)
        if start is not None:
            await start()


__all__ = ["HANDLER_TYPES", "Handler", "HandlerContext", "create_handler", "start_handlers", "validate_handler"]
