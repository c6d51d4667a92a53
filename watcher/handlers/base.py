"""What a handler is: something that processes one unit of work or raises.

Raise ``RetryableError`` or ``PermanentError`` (watcher.errors) to choose the message's fate; any
other exception counts as retryable. Handlers hold no state about the SQS loop, so the same ones run
in the long-lived worker and in the Lambda shim.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from watcher.config import AwsConfig, RouteConfig
from watcher.metrics import Metrics
from watcher.routing import Unit


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What the process gives every handler it creates: where to count, and how to reach AWS."""

    metrics: Metrics = field(default_factory=Metrics)
    aws: AwsConfig = field(default_factory=AwsConfig)


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
    def create(cls, route: RouteConfig, options: Mapping[str, Any], context: HandlerContext) -> Handler: ...
