"""The composition root: a configuration loaded and checked against the handler types, its handlers,
and the dispatcher that runs them. The worker, the commands and the Lambda entry point build the
pipeline here and nowhere else.

Handlers are created on first use: ``watcher explain`` and ``watcher check`` load and validate a
configuration without creating any (and import only the handler types its routes name).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

from watcher.config import loader
from watcher.config.schema import Config
from watcher.dispatch import Dispatcher
from watcher.handlers.base import Handler
from watcher.handlers.registry import create_handler, validate_handler
from watcher.idempotency.gate import IdempotencyGate
from watcher.idempotency.store import IdempotencyStore
from watcher.metrics import Metrics
from watcher.route_graph import cycle_problems


def parse_config(
    document: Any, source: str = "config", environ: Mapping[str, str] | None = None, *, read_secret_stores: bool = True
) -> Config:
    """Validate a configuration document: fields, references, every route's handler options, and
    that no route feeds itself. Raises ``ConfigError`` with every problem. Without
    ``read_secret_stores``, Secrets Manager and SSM references stay as written."""
    return loader.parse_config(
        document,
        source,
        environ,
        handler_problems=validate_handler,
        route_problems=cycle_problems,
        read_secret_stores=read_secret_stores,
    )


def load_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None, *, read_secret_stores: bool = True
) -> Config:
    """Read, override from the environment, resolve references and validate a config file."""
    return parse_config(loader.read_document(path), str(path), environ, read_secret_stores=read_secret_stores)


class App:
    """One configuration's handlers and dispatcher, made once per process (the worker at start, the
    Lambda entry point once per cold start)."""

    def __init__(self, config: Config, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self._handlers: dict[str, Handler] | None = None
        self._dispatcher: Dispatcher | None = None
        self._idempotency: IdempotencyStore | None = None

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """route name -> its handler, created the first time they are needed."""
        if self._handlers is None:
            cfg = self.config
            self._handlers = {r.name: create_handler(r, metrics=self.metrics, aws=cfg.aws) for r in cfg.routes}
        return self._handlers

    @property
    def idempotency(self) -> IdempotencyStore | None:
        """The store of units already run, when the configuration has an ``idempotency`` section."""
        if self._idempotency is None and self.config.idempotency is not None:
            self._idempotency = IdempotencyStore.from_config(self.config, self.metrics)
        return self._idempotency

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            store = self.idempotency
            gate = IdempotencyGate(store, self.metrics) if store is not None else None
            self._dispatcher = Dispatcher(self.config, self.handlers, self.metrics, gate)
        return self._dispatcher

    async def start(self) -> None:
        """Let every handler prepare before the first message (the container handler opens its work
        area and removes what a crashed worker left behind)."""
        for handler in self.handlers.values():
            await handler.start()

    async def close(self) -> None:
        """Close the handlers that were created, then the store; a failing close stops nothing."""
        for handler in (self._handlers or {}).values():
            with contextlib.suppress(Exception):
                await handler.close()
        if self._idempotency is not None:
            with contextlib.suppress(Exception):
                await self._idempotency.close()
