"""What a handler is: something that processes one unit of work or raises.

Raise ``RetryableError`` or ``PermanentError`` (watcher.errors) to choose the message's fate; any
other exception counts as retryable. Handlers hold no state about the SQS loop, so the same ones run
in the long-lived worker and in the Lambda entry point.

A handler type may declare where its route writes (``output_locations``), so that watcher.route_graph
can refuse a route that feeds itself; and a handler may need to ``start`` (open a work area, sweep
what a crashed worker left) before the first unit: both are part of the protocol, with defaults in
``HandlerDefaults``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from watcher.config.schema import AwsConfig, RouteConfig
from watcher.metrics import Metrics
from watcher.records import is_request_id
from watcher.routing import Unit


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What the process gives every handler it creates: where to count, and how to reach AWS."""

    metrics: Metrics = field(default_factory=Metrics)
    aws: AwsConfig = field(default_factory=AwsConfig)


@dataclass(frozen=True, slots=True)
class OutputLocation:
    """Objects a route writes, keys shaped ``key_prefix`` [``<request id>/``] ``path_prefix`` ...
    ``suffix`` in ``bucket``; ``uri`` is how the configuration wrote it, for messages."""

    bucket: str
    key_prefix: str  # the output folder, "" or ending in "/"
    suffix: str = ""
    uri: str = ""
    request_id_folder: bool = False  # a request id folder (watcher.records) follows key_prefix
    path_prefix: str = ""  # the output filter's prefix, below the request id folder

    def may_start_with(self, prefix: str) -> bool:
        """Could a key written here start with ``prefix`` (or ``prefix`` with such a key)?"""
        head = min(len(prefix), len(self.key_prefix))
        if prefix[:head] != self.key_prefix[:head]:
            return False
        rest = prefix[len(self.key_prefix) :]
        if self.request_id_folder and rest:
            folder, slash, rest = rest.partition("/")
            if not is_request_id(folder, partial=not slash):
                return False
        head = min(len(rest), len(self.path_prefix))
        return rest[:head] == self.path_prefix[:head]


class Handler(Protocol):
    async def start(self) -> None:
        """Prepare before the first unit (called once the queue answered); cheap when ready."""
        ...

    async def handle(self, unit: Unit) -> None: ...

    async def close(self) -> None:
        """Release what ``start`` or the units took; called once, at shutdown."""
        ...


class HandlerType(Protocol):
    """A kind of handler, selected by ``handler.type`` in a route."""

    type_name: ClassVar[str]
    # Whether its units read the object they are about (with the worker's credentials): the worker's
    # IAM policy then grants reading the route's bucket and prefix (watcher render terraform).
    reads_objects: ClassVar[bool]

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[str]:
        """Problems with the options, each ``.field: message`` (empty when valid)."""
        ...

    @classmethod
    def output_locations(cls, options: Mapping[str, Any]) -> list[OutputLocation]:
        """Where units of a route with these (valid) options write objects; empty for most."""
        ...

    @classmethod
    def create(cls, route: RouteConfig, options: Mapping[str, Any], context: HandlerContext) -> Handler: ...


class HandlerDefaults:
    """Defaults for the optional parts of both protocols: nothing to start, close or declare."""

    reads_objects: ClassVar[bool] = False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @classmethod
    def output_locations(cls, options: Mapping[str, Any]) -> list[OutputLocation]:
        return []
