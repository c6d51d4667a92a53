"""What a handler is: something that processes one unit of work or raises.

Raise ``RetryableError`` or ``PermanentError`` (watcher.errors) to choose the message's fate; any
other exception counts as retryable. Handlers hold no state about the SQS loop, so the same ones run
in the long-lived worker and in the Lambda shim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from watcher.config import RouteConfig
from watcher.routing import Unit


class Handler(Protocol):
    async def handle(self, unit: Unit) -> None: ...

    async def close(self) -> None: ...


class HandlerType(Protocol):
    """A kind of handler, selected by ``handler.type`` in a route."""

    type_name: ClassVar[str]

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[str]:
        """Problems with the options, each ``.field: message`` (empty when valid)."""
        ...

    @classmethod
    def create(cls, route: RouteConfig, options: Mapping[str, Any]) -> Handler: ...
