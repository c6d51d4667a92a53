"""Spec: function composition. One route's output may be another's input (video -> frames ->
detections), but a configuration in which a route's output would trigger that same route again,
directly or through other routes, is refused at load time, naming the cycle. A job's own log (under
a ``.watcher/`` folder next to its outputs) never triggers anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.process import REPO
from watcher.app import parse_config
from watcher.config.schema import HandlerSpec, RouteConfig
from watcher.envelope import SKIP_FOLDER_MARKER, SKIP_JOB_LOG, SKIP_NO_ROUTE
from watcher.errors import ConfigError
from watcher.handlers.base import OutputLocation
from watcher.handlers.container.handler import log_key
from watcher.handlers.container.options import OutputTarget
from watcher.handlers.registry import output_locations
from watcher.records import S3Record
from watcher.route_graph import cycle_problems, feeds, find_cycles, may_feed
from watcher.routing import match_routes

QUEUE_URL = "http://127.0.0.1:4566/000000000000/watcher-events"


def container(
    name: str,
    output: Any,
    *,
    bucket: str | None = "media",
    prefix: str = "",
    suffix: str = "",
    events: tuple[str, ...] = ("s3:ObjectCreated:*",),
    request_id_folder: bool = True,
) -> RouteConfig:
    """A container route that needs no image: the process runtime, running ``true``."""
    options = {"runtime": "process", "command": "true", "output": output, "request_id_folder": request_id_folder}
    return RouteConfig(
        name=name,
        handler=HandlerSpec("container", options),
        bucket=bucket,
        prefix=prefix,
        suffix=suffix,
        events=events,
    )


def log_route(name: str, *, bucket: str | None = "media", prefix: str = "") -> RouteConfig:
    return RouteConfig(name=name, handler=HandlerSpec("log"), bucket=bucket, prefix=prefix)


def as_document(routes: list[RouteConfig]) -> dict[str, Any]:
    """The same routes as a configuration file would hold them."""
    items = []
    for route in routes:
        item: dict[str, Any] = {"name": route.name, "prefix": route.prefix, "suffix": route.suffix}
        item["events"] = list(route.events)
        if route.bucket is not None:
            item["bucket"] = route.bucket
        item["handler"] = {"type": route.handler.type, **route.handler.options}
        items.append(item)
    return {"queue": {"url": QUEUE_URL}, "routes": items}


def load_problems(routes: list[RouteConfig]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(as_document(routes), "test.yaml", {})
    return caught.value.problems


# --- where a route writes ----------------------------------------------------------------------


def test_a_container_route_declares_its_outputs() -> None:
    route = container(
        "frames",
        [{"uri": "s3://media/frames/", "suffix": ".jpg"}, "s3://archive"],
    )
    assert output_locations(route) == [
        OutputLocation("media", "frames/", ".jpg", "s3://media/frames", request_id_folder=True),
        OutputLocation("archive", "", "", "s3://archive", request_id_folder=True),
    ]


def test_an_output_declares_its_folder_request_id_folder_and_path_filter() -> None:
    # keys are frames/<REQUEST_ID>/hd/... with the folder, frames/hd/... without it
    outputs = [{"uri": "s3://media/frames/", "prefix": "hd/"}]
    for request_id_folder in (True, False):
        route = container("frames", outputs, request_id_folder=request_id_folder)
        assert output_locations(route) == [
            OutputLocation("media", "frames/", "", "s3://media/frames", request_id_folder, "hd/")
        ]


@pytest.mark.parametrize(
    ("prefix", "possible"),
    [
        ("", True),
        ("fra", True),
        ("frames/", True),
        ("frames/0a1b", True),  # a request id may start so
        ("frames/in/", False),  # "i" and "n" are not hex digits: no request id starts so
        ("frames/" + "a" * 32 + "/hd/x", True),
        ("frames/" + "a" * 32 + "/sd/", False),  # below the id, the path filter is fixed
        ("frames/" + "a" * 33, False),  # a request id is 32 digits, then "/"
        ("video/", False),
    ],
)
def test_the_keys_under_a_request_id_folder_have_a_known_shape(prefix: str, possible: bool) -> None:
    location = OutputLocation("media", "frames/", request_id_folder=True, path_prefix="hd/")
    assert location.may_start_with(prefix) is possible


def test_a_handler_that_writes_nothing_declares_nothing() -> None:
    assert output_locations(log_route("log")) == []
    assert output_locations(container("sink", None)) == []


# --- could an output trigger a route -----------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "route", "fed"),
    [
        (OutputLocation("media", "frames/"), log_route("r", prefix="frames/"), True),
        (OutputLocation("media", "frames/"), log_route("r", prefix="frames/2026/"), True),  # deeper: may be
        (OutputLocation("media", "frames/"), log_route("r", prefix="fr"), True),
        (OutputLocation("media", "frames/"), log_route("r", prefix=""), True),
        (OutputLocation("media", "frames/"), log_route("r", prefix="video/"), False),
        (OutputLocation("media", "frames/"), log_route("r", prefix="frames2/"), False),
        (OutputLocation("media", "frames/"), log_route("r", bucket="other", prefix="frames/"), False),
        (OutputLocation("media", "frames/"), log_route("r", bucket=None, prefix="frames/"), True),  # any bucket
        (OutputLocation("media", ""), log_route("r", prefix="anything/"), True),  # the bucket's root
    ],
)
def test_may_feed_by_bucket_and_prefix(location: OutputLocation, route: RouteConfig, fed: bool) -> None:
    assert may_feed(location, route) is fed


@pytest.mark.parametrize(
    ("output_suffix", "route_suffix", "fed"),
    [
        ("", "", True),
        ("", ".jpg", True),  # an unfiltered output may hold anything
        (".jpg", "", True),
        (".jpg", ".jpg", True),
        (".json", ".jpg", False),
        ("_boxes.json", ".json", True),
        (".json", "_boxes.json", True),  # some .json files may end in _boxes.json
        (".JPG", ".jpg", False),  # S3 keys are case-sensitive
    ],
)
def test_may_feed_by_suffix(output_suffix: str, route_suffix: str, fed: bool) -> None:
    route = RouteConfig("r", HandlerSpec("log"), bucket="media", prefix="frames/", suffix=route_suffix)
    assert may_feed(OutputLocation("media", "frames/", output_suffix), route) is fed


@pytest.mark.parametrize(
    ("events", "fed"),
    [
        (("s3:ObjectCreated:*",), True),
        (("s3:ObjectCreated:Put",), True),
        (("s3:ObjectCreated:CompleteMultipartUpload",), True),  # large outputs are multipart uploads
        (("s3:*",), True),
        (("s3:ObjectRemoved:*",), False),
        (("s3:ObjectCreated:Copy",), False),
        (("s3:ObjectRemoved:Delete", "s3:ObjectCreated:Post"), False),
    ],
)
def test_may_feed_only_a_route_listening_to_uploads(events: tuple[str, ...], fed: bool) -> None:
    route = RouteConfig("r", HandlerSpec("log"), bucket="media", prefix="frames/", events=events)
    assert may_feed(OutputLocation("media", "frames/"), route) is fed


# --- cycles ------------------------------------------------------------------------------------


def test_a_route_writing_under_its_own_prefix_is_a_self_cycle() -> None:
    thumbs = container("thumbs", "s3://media/in/thumbs/", prefix="in/")
    assert feeds([thumbs]) == {"thumbs": [("thumbs", "s3://media/in/thumbs")]}
    assert find_cycles([thumbs]) == [["thumbs", "thumbs"]]
    (problem,) = cycle_problems([thumbs])
    assert "thumbs -> thumbs" in problem


def test_a_self_cycle_is_refused_when_the_config_loads() -> None:
    routes = [log_route("audit", prefix="audit/"), container("thumbs", "s3://media/in/thumbs/", prefix="in/")]
    (problem,) = load_problems(routes)
    assert "thumbs -> thumbs" in problem
    assert "audit" not in problem


def test_two_routes_feeding_each_other_are_named_in_order() -> None:
    routes = [
        container("a", "s3://media/b-in/", prefix="a-in/"),
        container("b", "s3://media/a-in/", prefix="b-in/"),
    ]
    assert find_cycles(routes) == [["a", "b", "a"]]
    (problem,) = load_problems(routes)
    assert "a -> b -> a" in problem


def test_a_cycle_is_named_from_its_first_route_in_the_config() -> None:
    routes = [
        container("b", "s3://media/a-in/", prefix="b-in/"),
        container("a", "s3://media/b-in/", prefix="a-in/"),
    ]
    assert find_cycles(routes) == [["b", "a", "b"]]


def test_a_longer_cycle_is_named_once_in_full() -> None:
    routes = [
        container("one", "s3://media/two/", prefix="one/"),
        log_route("unrelated", prefix="logs/"),
        container("two", "s3://media/three/", prefix="two/"),
        container("three", "s3://media/one/", prefix="three/"),
    ]
    assert find_cycles(routes) == [["one", "two", "three", "one"]]
    (problem,) = cycle_problems(routes)
    assert "one -> two -> three -> one" in problem


def test_every_cycle_is_reported() -> None:
    routes = [
        container("self", "s3://media/self/x/", prefix="self/"),
        container("a", "s3://media/b/", prefix="a/"),
        container("b", "s3://media/a/", prefix="b/"),
    ]
    assert find_cycles(routes) == [["self", "self"], ["a", "b", "a"]]
    problems = load_problems(routes)
    assert len(problems) == 2
    assert "self -> self" in problems[0] and "a -> b -> a" in problems[1]


def test_a_chain_without_a_cycle_loads() -> None:
    routes = [
        container("video", "s3://media/frames/", prefix="videos/", suffix=".mp4"),
        container("frames", "s3://media/detections/", prefix="frames/", suffix=".jpg"),
        container("detections", "s3://reports/summaries/", prefix="detections/", suffix=".json"),
    ]
    assert feeds(routes) == {
        "video": [("frames", "s3://media/frames")],
        "frames": [("detections", "s3://media/detections")],
        "detections": [],
    }
    assert find_cycles(routes) == []
    config = parse_config(as_document(routes), "test.yaml", {})
    assert [r.name for r in config.routes] == ["video", "frames", "detections"]


def test_a_suffix_filter_on_the_output_breaks_a_cycle() -> None:
    # frames reads *.jpg and writes back into frames/, but only its *.json results.
    writes_json = container(
        "frames", [{"uri": "s3://media/frames/", "suffix": ".json"}], prefix="frames/", suffix=".jpg"
    )
    assert find_cycles([writes_json]) == []
    parse_config(as_document([writes_json]), "test.yaml", {})
    # Without the filter every output may be a .jpg: a cycle.
    writes_all = container("frames", "s3://media/frames/", prefix="frames/", suffix=".jpg")
    assert find_cycles([writes_all]) == [["frames", "frames"]]


def test_a_route_on_another_bucket_is_not_fed() -> None:
    routes = [
        container("a", "s3://processed/in/", bucket="raw", prefix="in/"),
        container("b", "s3://raw/elsewhere/", bucket="processed", prefix="other/"),
    ]
    assert feeds(routes) == {"a": [], "b": []}
    assert find_cycles(routes) == []


def test_a_route_on_any_bucket_is_fed_by_every_bucket() -> None:
    routes = [container("a", "s3://processed/in/", bucket=None, prefix="in/")]
    assert find_cycles(routes) == [["a", "a"]]


def test_a_route_listening_only_to_deletions_is_not_fed() -> None:
    routes = [container("cleanup", "s3://media/trash/", prefix="trash/", events=("s3:ObjectRemoved:*",))]
    assert feeds(routes) == {"cleanup": []}
    parse_config(as_document(routes), "test.yaml", {})


def test_without_the_request_id_folder_the_output_path_filter_counts() -> None:
    # Outputs go to media/out/hd/...: a route on out/sd/ can never see them...
    hd_only = [{"uri": "s3://media/out/", "prefix": "hd/"}]
    routes = [container("sd", hd_only, prefix="out/sd/", request_id_folder=False)]
    assert find_cycles(routes) == []
    # ...nor with the REQUEST_ID folder: keys are out/<32 hex digits>/hd/..., never out/sd/...
    routes = [container("sd", hd_only, prefix="out/sd/", request_id_folder=True)]
    assert find_cycles(routes) == []
    # A route on out/ sees them either way.
    routes = [container("all", hd_only, prefix="out/", request_id_folder=True)]
    assert find_cycles(routes) == [["all", "all"]]
    # And without the folder, a route on out/hd/ does see them.
    routes = [container("hd", hd_only, prefix="out/hd/", request_id_folder=False)]
    assert find_cycles(routes) == [["hd", "hd"]]


def test_a_cycle_through_a_route_that_writes_nothing_is_no_cycle() -> None:
    routes = [
        container("a", "s3://media/logged/", prefix="in/"),
        log_route("logger", prefix="logged/"),
    ]
    assert feeds(routes) == {"a": [("logger", "s3://media/logged")], "logger": []}
    assert find_cycles(routes) == []


# --- the user-facing contract: watcher check ---------------------------------------------------


def check(tmp_path: Path, routes: list[RouteConfig]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "watcher.yaml"
    path.write_text(yaml.safe_dump(as_document(routes), sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    return subprocess.run(
        [sys.executable, "-m", "watcher", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"},
        timeout=60,
    )


def test_watcher_check_refuses_a_cycle_and_names_it(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        [
            container("a", "s3://media/b-in/", prefix="a-in/"),
            container("b", "s3://media/a-in/", prefix="b-in/"),
        ],
    )
    assert result.returncode == 2, result  # an invalid configuration, like any other problem
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"watcher: invalid configuration ({tmp_path / 'watcher.yaml'}):"
    assert len(lines) == 2 and lines[1].startswith("  - ")
    assert "a -> b -> a" in lines[1]


def test_watcher_check_accepts_a_chain(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        [
            container("video", "s3://media/frames/", prefix="videos/"),
            container("frames", "s3://media/detections/", prefix="frames/"),
            log_route("detections", prefix="detections/"),
        ],
    )
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'watcher.yaml'}: valid (3 routes: video, frames, detections)",
        "feeds: route video writes to s3://media/frames, which route frames reads",
        "feeds: route frames writes to s3://media/detections, which route detections reads",
    ]
    assert result.stderr == ""


# --- job logs never trigger a route ------------------------------------------------------------


def created(key: str, bucket: str = "media") -> S3Record:
    return S3Record(bucket=bucket, key=key, event_name="ObjectCreated:Put")


EVERYTHING = RouteConfig("everything", HandlerSpec("log"), bucket=None)


@pytest.mark.parametrize(
    "key",
    [
        "out/abc/.watcher/log.txt",
        ".watcher/log.txt",
        "out/.watcher/0123/log.txt",
        "a/b/c/.watcher/anything/else.json",
    ],
)
def test_a_key_under_a_watcher_folder_is_a_job_log(key: str) -> None:
    routes, skip = match_routes(created(key), [EVERYTHING])
    assert routes == []
    assert skip is not None and skip.reason == SKIP_JOB_LOG
    assert skip.detail == f"s3://media/{key}"


@pytest.mark.parametrize(
    "key",
    ["out/x.watcher/log.txt", "out/.watcherx/log.txt", "out/.watcher", "out/my.watcher", "watcher/log.txt"],
)
def test_only_a_whole_watcher_folder_is_a_job_log(key: str) -> None:
    routes, skip = match_routes(created(key), [EVERYTHING])
    assert skip is None
    assert [r.name for r in routes] == ["everything"]


def test_a_job_log_is_skipped_even_for_a_route_on_that_folder() -> None:
    route = RouteConfig("logs", HandlerSpec("log"), bucket="media", prefix="out/abc/.watcher/")
    _, skip = match_routes(created("out/abc/.watcher/log.txt"), [route])
    assert skip is not None and skip.reason == SKIP_JOB_LOG


def test_a_watcher_folder_marker_is_a_folder_marker() -> None:
    _, skip = match_routes(created("out/abc/.watcher/"), [EVERYTHING])
    assert skip is not None and skip.reason == SKIP_FOLDER_MARKER


def test_a_job_log_of_no_route_is_still_a_job_log() -> None:
    # Counted as what it is, not as a record nobody wanted.
    route = RouteConfig("other", HandlerSpec("log"), bucket="elsewhere")
    _, skip = match_routes(created("out/abc/.watcher/log.txt"), [route])
    assert skip is not None and skip.reason == SKIP_JOB_LOG
    _, skip = match_routes(created("out/abc/result.txt"), [route])
    assert skip is not None and skip.reason == SKIP_NO_ROUTE


@pytest.mark.parametrize("request_id_folder", [True, False])
@pytest.mark.parametrize("key_prefix", ["", "out", "deep/er/out"])
def test_the_log_a_job_writes_never_triggers_a_route(request_id_folder: bool, key_prefix: str) -> None:
    key = log_key(OutputTarget("media", key_prefix), "0123456789abcdef0123456789abcdef", request_id_folder)
    _, skip = match_routes(created(key), [EVERYTHING])
    assert skip is not None and skip.reason == SKIP_JOB_LOG
