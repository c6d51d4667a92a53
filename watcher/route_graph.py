"""Which route's output feeds which route: one route's output may be another route's input (video ->
frames -> detections), but never, directly or through other routes, its own.

A route whose handler writes to S3 declares where (``HandlerType.output_locations``). Route B *may
be fed* by route A when an object A writes could match B: same bucket (or B takes any bucket), B's
prefix and A's fixed key prefix compatible (one starts with the other), B's suffix and A's suffix
compatible, and B listening to the ObjectCreated events an upload produces. The check is
conservative: it may see a feed that real file names would never produce, never the reverse. Job
logs under a ``.watcher/`` folder are not counted: routing skips them (watcher.routing).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from watcher.config.schema import RouteConfig
from watcher.handlers.base import OutputLocation
from watcher.handlers.registry import output_locations

UPLOAD_EVENTS = ("s3:ObjectCreated:Put", "s3:ObjectCreated:CompleteMultipartUpload")


def may_feed(location: OutputLocation, route: RouteConfig) -> bool:
    """Could an object written at ``location`` trigger ``route``?"""
    if route.bucket is not None and route.bucket != location.bucket:
        return False
    if not location.may_start_with(route.prefix):
        return False
    if not (route.suffix.endswith(location.suffix) or location.suffix.endswith(route.suffix)):
        return False
    return any(fnmatchcase(event, pattern) for event in UPLOAD_EVENTS for pattern in route.events)


def feeds(routes: Sequence[RouteConfig]) -> dict[str, list[tuple[str, str]]]:
    """route name -> [(the route it may feed, through which output URI)]."""
    graph: dict[str, list[tuple[str, str]]] = {route.name: [] for route in routes}
    for source in routes:
        for location in output_locations(source):
            for target in routes:
                if may_feed(location, target) and target.name not in (name for name, _ in graph[source.name]):
                    graph[source.name].append((target.name, location.uri))
    return graph


def find_cycles(routes: Sequence[RouteConfig]) -> list[list[str]]:
    """Each cycle once, as route names from its first route (in config order) back to it."""
    graph = {name: [target for target, _ in targets] for name, targets in feeds(routes).items()}
    order = {route.name: index for index, route in enumerate(routes)}
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for successor in graph.get(node, []):
            if successor == start:
                members = frozenset(path)
                if members not in seen:
                    seen.add(members)
                    cycles.append([*path, start])
            elif successor not in path and order[successor] > order[start]:
                walk(start, successor, [*path, successor])

    for route in routes:
        walk(route.name, route.name, [route.name])
    return cycles


def cycle_problems(routes: Sequence[RouteConfig]) -> list[str]:
    """One problem per cycle, on the ``handler.output`` field of the cycle's first route."""
    index = {route.name: i for i, route in enumerate(routes)}
    through = {name: dict(targets) for name, targets in feeds(routes).items()}
    problems = []
    for cycle in find_cycles(routes):
        first = cycle[0]
        where = f"routes[{index[first]}] ({first}).handler.output"
        uri = through[first][cycle[1]]
        if len(cycle) == 2:
            what = f"{uri} is watched by the route itself ({first} -> {first})"
        else:
            what = f"{uri} starts a cycle of routes {' -> '.join(cycle)} (each one's output triggers the next)"
        problems.append(
            f"{where}: {what}: every result would be processed again, forever; "
            "change an output location or a route's prefix/suffix"
        )
    return problems
