"""Handler registry: ``handler.type`` in a route -> the class that implements it, named as
``module:Class`` and imported on first use, so that a configuration with only ``log`` routes never
imports the Docker SDK, aiohttp or tenacity (``watcher explain`` and a Lambda cold start pay for what
they use). A new handler type is a new module plus one line here."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import cast

from watcher.config.schema import AwsConfig, HandlerSpec, RouteConfig
from watcher.handlers.base import Handler, HandlerContext, HandlerType, OutputLocation
from watcher.metrics import Metrics

HANDLER_TYPES: Mapping[str, str] = {
    "container": "watcher.handlers.container.handler:ContainerHandler",
    "log": "watcher.handlers.log:LogHandler",
    "python": "watcher.handlers.python:PythonHandler",
    "workflow": "watcher.handlers.workflow.handler:WorkflowHandler",
}
_loaded: dict[str, type[HandlerType]] = {}


def handler_type(name: str) -> type[HandlerType] | None:
    """The class of a handler type, imported the first time it is asked for; None when unknown."""
    found = _loaded.get(name)
    if found is None and name in HANDLER_TYPES:
        module_name, _, class_name = HANDLER_TYPES[name].partition(":")
        found = _loaded[name] = cast(type[HandlerType], getattr(importlib.import_module(module_name), class_name))
    return found


def validate_handler(spec: HandlerSpec) -> list[str]:
    """Problems with a route's handler block, each starting with ``.field`` or ``.type``."""
    found = handler_type(spec.type)
    if found is None:
        return [f".type: unknown handler type {spec.type!r} (known: {', '.join(sorted(HANDLER_TYPES))})"]
    return found.validate(spec.options)


def output_locations(route: RouteConfig) -> list[OutputLocation]:
    """Where a (valid) route's handler writes objects."""
    found = handler_type(route.handler.type)
    return found.output_locations(route.handler.options) if found is not None else []


def create_handler(route: RouteConfig, *, metrics: Metrics | None = None, aws: AwsConfig | None = None) -> Handler:
    found = handler_type(route.handler.type)
    if found is None:
        raise ValueError(f"unknown handler type {route.handler.type!r}")
    return found.create(route, route.handler.options, HandlerContext(metrics or Metrics(), aws or AwsConfig()))


def reads_objects(route: RouteConfig) -> bool:
    """Whether a route's units read the object they are about."""
    found = handler_type(route.handler.type)
    return bool(found is not None and found.reads_objects)
