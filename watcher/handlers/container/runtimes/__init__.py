"""Where a container job runs: ``RUNTIMES`` maps a route's ``runtime:`` to its class, as
``module:Class``, imported on first use (the Docker SDK only when a route runs on Docker). A new
runtime is one module in this folder plus one line here."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import cast

from watcher.handlers.container.runtimes.base import Runtime

RUNTIMES: Mapping[str, str] = {
    "docker": "watcher.handlers.container.runtimes.docker:DockerRuntime",
    "process": "watcher.handlers.container.runtimes.process:ProcessRuntime",
    "batch": "watcher.handlers.container.runtimes.batch:BatchRuntime",
}


def runtime_class(name: str) -> type[Runtime]:
    """The class of a runtime named in ``RUNTIMES``, imported the first time it is asked for."""
    module_name, _, class_name = RUNTIMES[name].partition(":")
    return cast(type[Runtime], getattr(importlib.import_module(module_name), class_name))
