"""Records -> units of work: which configured routes a record matches.

A record may match several routes; each match is one unit of work. Records no route wants are
skipped with a reason (``folder_marker``, ``job_log``, ``event_type``, ``no_route``) so that they are counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import translate
from functools import lru_cache

from watcher.config.schema import RouteConfig
from watcher.envelope import SKIP_EVENT_TYPE, SKIP_FOLDER_MARKER, SKIP_JOB_LOG, SKIP_NO_ROUTE, Skip
from watcher.records import S3Record, dataset_of, dataset_uri


@dataclass(frozen=True, slots=True)
class Unit:
    """One record matched to one route: what a handler is given."""

    record: S3Record
    route: RouteConfig
    message_id: str = ""
    receive_count: int = 1

    @property
    def dataset(self) -> str:
        return dataset_of(self.record.key, self.route.suffix)

    @property
    def dataset_uri(self) -> str:
        return dataset_uri(self.record.bucket, self.dataset)

    @property
    def request_id(self) -> str:
        """The record's request id (watcher.records): the same for duplicates of one object version."""
        return self.record.request_id


def location_matches(route: RouteConfig, record: S3Record) -> bool:
    return (
        (route.bucket is None or route.bucket == record.bucket)
        and record.key.startswith(route.prefix)
        and record.key.endswith(route.suffix)
    )


def event_matches(route: RouteConfig, record: S3Record) -> bool:
    return _events_pattern(route.events).match(record.event_type) is not None


@lru_cache(maxsize=256)
def _events_pattern(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """A route's event patterns (``fnmatchcase`` globs) as one compiled regular expression."""
    return re.compile("|".join(f"(?:{translate(pattern)})" for pattern in patterns) or "(?!)")


def match_routes(record: S3Record, routes: Sequence[RouteConfig]) -> tuple[list[RouteConfig], Skip | None]:
    """The routes that want this record, or why none does."""
    if record.is_folder_marker:
        return [], Skip(SKIP_FOLDER_MARKER, record.uri)
    if record.is_job_log:
        return [], Skip(SKIP_JOB_LOG, record.uri)
    located = [route for route in routes if location_matches(route, record)]
    if not located:
        return [], Skip(SKIP_NO_ROUTE, record.uri)
    wanted = [route for route in located if event_matches(route, record)]
    if not wanted:
        return [], Skip(SKIP_EVENT_TYPE, f"{record.event_type} {record.uri}")
    return wanted, None
