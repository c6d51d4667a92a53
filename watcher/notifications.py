"""S3 bucket notification filters: what one route needs, and whether a configured filter covers it.
Shared by ``watcher provision`` (which writes them) and ``watcher check --live`` (which verifies)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from watcher.config.schema import RouteConfig


@dataclass(frozen=True, slots=True)
class NotificationFilter:
    prefix: str
    suffix: str
    events: tuple[str, ...]

    def covers(self, route: RouteConfig) -> bool:
        """True when every object event the route wants would be sent by this filter."""
        return (
            route.prefix.startswith(self.prefix)
            and route.suffix.endswith(self.suffix)
            and all(any(event_covered(e, mine) for mine in self.events) for e in route.events)
        )

    def overlaps(self, other: NotificationFilter) -> bool:
        """S3 refuses two configurations on one bucket whose filters could match the same event."""
        prefixes = self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix)
        suffixes = self.suffix.endswith(other.suffix) or other.suffix.endswith(self.suffix)
        events = any(event_covered(a, b) or event_covered(b, a) for a in self.events for b in other.events)
        return prefixes and suffixes and events

    def to_s3(self) -> dict[str, Any]:
        rules = [{"Name": n, "Value": v} for n, v in (("prefix", self.prefix), ("suffix", self.suffix)) if v]
        return {
            "Events": list(self.events),
            **({"Filter": {"Key": {"FilterRules": rules}}} if rules else {}),
        }


def event_covered(wanted: str, configured: str) -> bool:
    """``s3:ObjectCreated:Put`` and ``s3:ObjectCreated:*`` are covered by ``s3:ObjectCreated:*``."""
    return wanted == configured or fnmatchcase(wanted.rstrip("*"), configured)


def filter_of(route: RouteConfig) -> NotificationFilter:
    return NotificationFilter(route.prefix, route.suffix, route.events)


def from_s3(configuration: dict[str, Any]) -> NotificationFilter:
    rules = configuration.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    values = {rule["Name"].lower(): rule["Value"] for rule in rules}
    return NotificationFilter(
        values.get("prefix", ""), values.get("suffix", ""), tuple(configuration.get("Events", []))
    )


def filters_for_bucket(routes: Sequence[RouteConfig]) -> list[NotificationFilter]:
    """One filter per distinct route filter, or, when any two overlap (S3 would reject them), a
    single filter broad enough for all: the worker's own routing narrows it down again."""
    distinct = list(dict.fromkeys(filter_of(route) for route in routes))
    if all(not a.overlaps(b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]):
        return distinct
    prefix = os.path.commonprefix(  # noqa: RUF071 - S3 filters are plain strings
        [f.prefix for f in distinct]
    )
    suffix = os.path.commonprefix(  # noqa: RUF071
        [f.suffix[::-1] for f in distinct]
    )[::-1]
    events = tuple(dict.fromkeys(e for f in distinct for e in f.events))
    return [NotificationFilter(prefix, suffix, events)]


def routes_by_bucket(routes: Iterable[RouteConfig]) -> dict[str, list[RouteConfig]]:
    grouped: dict[str, list[RouteConfig]] = {}
    for route in routes:
        if route.bucket:
            grouped.setdefault(route.bucket, []).append(route)
    return grouped
