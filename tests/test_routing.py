"""Spec: which routes a record matches (bucket, prefix, suffix, event type), why a record no route
wants is skipped, and the dataset a unit of work stands for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.fixtures import load_fixture
from watcher.config.schema import DEFAULT_EVENTS, HandlerSpec, RouteConfig
from watcher.envelope import SKIP_EVENT_TYPE, SKIP_FOLDER_MARKER, SKIP_NO_ROUTE, parse_body
from watcher.records import S3Record, dataset_of, dataset_uri
from watcher.routing import Unit, event_matches, location_matches, match_routes


def route(
    name: str = "r",
    *,
    bucket: str | None = "data-lake",
    prefix: str = "",
    suffix: str = "",
    events: tuple[str, ...] = DEFAULT_EVENTS,
) -> RouteConfig:
    return RouteConfig(
        name=name, handler=HandlerSpec("log"), bucket=bucket, prefix=prefix, suffix=suffix, events=events
    )


def record(
    key: str = "raw/2026/11/23/orders.csv",
    *,
    bucket: str = "data-lake",
    event_name: str = "ObjectCreated:Put",
    version_id: str | None = None,
    sequencer: str | None = None,
    etag: str | None = None,
) -> S3Record:
    return S3Record(
        bucket=bucket, key=key, event_name=event_name, version_id=version_id, sequencer=sequencer, etag=etag
    )


def fixture_record(name: str) -> S3Record:
    (only,) = parse_body(load_fixture(name)).records
    return only


def names(routes: list[RouteConfig]) -> list[str]:
    return [r.name for r in routes]


# --- location: bucket, prefix, suffix ----------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "key", "bucket", "matches"),
    [
        (route(prefix="raw/"), "raw/2026/orders.csv", "data-lake", True),
        (route(prefix="raw/"), "rawdata/orders.csv", "data-lake", False),  # a prefix, not a folder glob
        (route(prefix="raw/"), "archive/raw/orders.csv", "data-lake", False),
        (route(prefix="Raw/"), "raw/orders.csv", "data-lake", False),  # case-sensitive, like S3 filters
        (route(suffix=".csv"), "raw/orders.csv", "data-lake", True),
        (route(suffix=".csv"), "raw/orders.csv.gz", "data-lake", False),
        (route(suffix=".csv"), "raw/orders.CSV", "data-lake", False),
        (route(prefix="raw/", suffix=".csv"), "raw/a/b.csv", "data-lake", True),
        (route(prefix="raw/", suffix=".csv"), "events/b.csv", "data-lake", False),
        (route(), "anything/at/all", "data-lake", True),  # empty prefix and suffix match every key
        (route(bucket="data-lake"), "raw/orders.csv", "other-bucket", False),
        (route(bucket=None), "raw/orders.csv", "other-bucket", True),  # no bucket: any bucket
        (route(prefix="café/"), "café/menu.csv", "data-lake", True),  # compared on the decoded key
    ],
)
def test_location_matching(rule: RouteConfig, key: str, bucket: str, matches: bool) -> None:
    assert location_matches(rule, record(key, bucket=bucket)) is matches


def test_routes_see_the_decoded_key_of_a_real_notification() -> None:
    # The LocalStack fixture's key is raw/2026/11/23/daily%20report%202026.csv on the wire.
    localstack = fixture_record("localstack_put_space_key")
    wanted, skip = match_routes(localstack, [route("reports", prefix="raw/2026/11/23/daily report", suffix=".csv")])
    assert skip is None
    assert names(wanted) == ["reports"]


# --- event types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "event_name", "matches"),
    [
        (("s3:ObjectCreated:*",), "ObjectCreated:Put", True),
        (("s3:ObjectCreated:*",), "ObjectCreated:CompleteMultipartUpload", True),
        (("s3:ObjectCreated:*",), "ObjectCreated:Copy", True),
        (("s3:ObjectCreated:*",), "ObjectRemoved:Delete", False),
        (("s3:ObjectCreated:*",), "ObjectRemoved:DeleteMarkerCreated", False),
        (("s3:ObjectCreated:Put",), "ObjectCreated:Put", True),
        (("s3:ObjectCreated:Put",), "ObjectCreated:Post", False),
        (("s3:ObjectRemoved:*",), "ObjectRemoved:Delete", True),
        (("s3:ObjectCreated:*", "s3:ObjectRemoved:*"), "ObjectRemoved:Delete", True),
        (("s3:ObjectCreated:*",), "s3:ObjectCreated:Put", True),  # a name that already has the prefix
        (("s3:objectcreated:*",), "ObjectCreated:Put", False),  # case-sensitive
    ],
)
def test_event_type_matching(patterns: tuple[str, ...], event_name: str, matches: bool) -> None:
    assert event_matches(route(events=patterns), record(event_name=event_name)) is matches


def test_routes_want_object_created_events_by_default() -> None:
    default = route()
    assert event_matches(default, fixture_record("s3_success_marker"))
    assert not event_matches(default, fixture_record("s3_object_removed_delete"))


# --- match_routes: units and skip reasons ------------------------------------------------------


def test_a_record_matching_several_routes_gives_one_unit_per_route() -> None:
    routes = [
        route("all-raw", prefix="raw/"),
        route("csv-anywhere", suffix=".csv"),
        route("events", prefix="events/"),
        route("other-bucket", bucket="elsewhere"),
    ]
    wanted, skip = match_routes(record("raw/2026/11/23/orders.csv"), routes)
    assert skip is None
    assert names(wanted) == ["all-raw", "csv-anywhere"]  # in configuration order


def test_a_folder_marker_is_skipped_even_when_a_route_would_match() -> None:
    marker = fixture_record("s3_folder_marker")
    wanted, skip = match_routes(marker, [route(prefix="events/")])
    assert wanted == []
    assert skip is not None
    assert skip.reason == SKIP_FOLDER_MARKER
    assert skip.detail == "s3://data-lake/events/2026/11/23/"


def test_a_record_in_place_but_of_an_unwanted_event_type_is_skipped_as_event_type() -> None:
    deletion = fixture_record("s3_object_removed_delete")
    wanted, skip = match_routes(deletion, [route("raw", prefix="raw/")])
    assert wanted == []
    assert skip is not None
    assert skip.reason == SKIP_EVENT_TYPE
    assert "s3:ObjectRemoved:Delete" in skip.detail
    assert "s3://data-lake/raw/2026/11/23/orders.csv" in skip.detail


def test_a_record_no_route_covers_is_skipped_as_no_route() -> None:
    wanted, skip = match_routes(record("logs/app.log"), [route(prefix="raw/"), route(suffix="_SUCCESS")])
    assert wanted == []
    assert skip is not None
    assert skip.reason == SKIP_NO_ROUTE
    assert skip.detail == "s3://data-lake/logs/app.log"


def test_no_route_wins_over_event_type_when_nothing_covers_the_location() -> None:
    wanted, skip = match_routes(record("logs/app.log", event_name="ObjectRemoved:Delete"), [route(prefix="raw/")])
    assert wanted == []
    assert skip is not None
    assert skip.reason == SKIP_NO_ROUTE


def test_with_no_routes_at_all_every_record_is_no_route() -> None:
    _, skip = match_routes(record(), [])
    assert skip is not None
    assert skip.reason == SKIP_NO_ROUTE


def test_one_route_wanting_the_event_is_enough() -> None:
    routes = [route("created", prefix="raw/"), route("removed", prefix="raw/", events=("s3:ObjectRemoved:*",))]
    wanted, skip = match_routes(record(event_name="ObjectRemoved:Delete"), routes)
    assert skip is None
    assert names(wanted) == ["removed"]


# --- datasets ----------------------------------------------------------------------------------


def test_a_success_marker_stands_for_the_folder_that_holds_it() -> None:
    success = fixture_record("s3_success_marker")
    unit = Unit(success, route("fire-insights", prefix="events/", suffix="_SUCCESS"))
    assert unit.dataset == "events/2026/11/23"
    assert unit.dataset_uri == "s3://data-lake/events/2026/11/23"


def test_a_file_suffix_keeps_the_key_as_the_dataset() -> None:
    unit = Unit(record("raw/2026/11/23/orders.csv"), route("raw-csv", prefix="raw/", suffix=".csv"))
    assert unit.dataset == "raw/2026/11/23/orders.csv"
    assert unit.dataset_uri == "s3://data-lake/raw/2026/11/23/orders.csv"


@pytest.mark.parametrize(
    ("key", "suffix", "dataset"),
    [
        ("events/2026/11/23/_SUCCESS", "_SUCCESS", "events/2026/11/23"),
        ("events/2026/11/23/_SUCCESS", "/_SUCCESS", "events/2026/11/23"),  # a leading slash is the same marker
        ("_SUCCESS", "_SUCCESS", ""),  # at the bucket root: the whole bucket
        ("events/2026/11/23/job_SUCCESS", "_SUCCESS", "events/2026/11/23/job_SUCCESS"),  # not the whole name
        ("raw/orders.csv", ".csv", "raw/orders.csv"),
        ("raw/orders.csv", "", "raw/orders.csv"),
        ("raw/orders.csv", None, "raw/orders.csv"),
    ],
)
def test_dataset_of(key: str, suffix: str | None, dataset: str) -> None:
    assert dataset_of(key, suffix) == dataset


def test_dataset_uri_of_the_bucket_root_has_no_trailing_slash() -> None:
    assert dataset_uri("data-lake", "") == "s3://data-lake"
    assert dataset_uri("data-lake", "events/2026") == "s3://data-lake/events/2026"


# --- request ids -------------------------------------------------------------------------------


def test_request_id_is_deterministic_for_an_object_version() -> None:
    success = fixture_record("s3_success_marker")
    first = Unit(success, route(), message_id="m-1")
    redelivered = Unit(fixture_record("s3_success_marker"), route(), message_id="m-2", receive_count=3)
    assert first.request_id == redelivered.request_id
    assert len(first.request_id) == 32
    int(first.request_id, 16)  # hexadecimal


def test_request_id_differs_between_versions_of_the_same_key() -> None:
    v1 = Unit(record(version_id="v1", sequencer="0001"), route())
    v2 = Unit(record(version_id="v2", sequencer="0002"), route())
    assert v1.request_id != v2.request_id


@pytest.mark.parametrize("field", ["sequencer", "etag"])
def test_without_a_version_id_the_sequencer_or_etag_tells_versions_apart(field: str) -> None:
    one = Unit(record(**{field: "aaa"}), route())
    two = Unit(record(**{field: "bbb"}), route())
    assert one.request_id != two.request_id


def test_request_id_differs_between_keys_and_buckets() -> None:
    base = record(version_id="v1")
    ids = {
        Unit(base, route()).request_id,
        Unit(replace(base, key="raw/2026/11/23/other.csv"), route()).request_id,
        Unit(replace(base, bucket="other-bucket"), route()).request_id,
    }
    assert len(ids) == 3


def test_request_id_accepts_any_key_text() -> None:
    # A key decoded from JSON may hold a lone surrogate; the id must still be computable.
    assert len(Unit(record("bad\ud800key"), route()).request_id) == 32
