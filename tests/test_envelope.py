"""Spec: an SQS message body becomes decoded S3 records, whatever way S3 delivered it.

The bodies in tests/fixtures are real payload shapes (AWS documentation samples, LocalStack output),
kept as files so that a reader sees exactly what arrives on the queue.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.fixtures import load_fixture, load_fixture_json
from watcher.envelope import SKIP_TEST_EVENT, parse_body
from watcher.errors import MessageFormatError, PermanentError
from watcher.records import S3Record, decode_key

# What each single-record fixture must parse to. The key is the *decoded* key.
AWS_SAMPLE = {
    "bucket": "amzn-s3-demo-bucket",
    "key": "photos/2026/Happy Face +1 café.jpg",
    "size": 1024,
    "etag": "d41d8cd98f00b204e9800998ecf8427e",
    "version_id": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
    "sequencer": "0055AED6DCD90281E5",
    "event_name": "ObjectCreated:Put",
    "event_time": "1970-01-01T00:00:00.000Z",
    "region": "us-west-2",
    "source": "s3",
}
EVENTBRIDGE_SAMPLE = {
    "bucket": "data-lake",
    "key": "raw/2026/11/23/daily orders.csv",
    "size": 5,
    "etag": "b1946ac92492d2347c6235b4d2611184",
    "version_id": "IYV3p45BhZA1SB.CnwdKHE2dVLwi9NnZ",
    "sequencer": "617f08299329d189",
    "event_name": "ObjectCreated:Put",
    "event_time": "2026-11-23T04:12:09Z",
    "region": "ca-central-1",
    "source": "eventbridge",
}
SINGLE_RECORD_FIXTURES = {
    "s3_put_aws_sample": AWS_SAMPLE,
    "sns_s3_put": AWS_SAMPLE,
    "eventbridge_object_created": EVENTBRIDGE_SAMPLE,
    "sns_eventbridge_object_created": EVENTBRIDGE_SAMPLE,
    "localstack_put_space_key": {
        "bucket": "data-lake",
        "key": "raw/2026/11/23/daily report 2026.csv",
        "size": 5,
        "etag": "5d41402abc4b2a76b9719d911017c592",
        "version_id": None,
        "sequencer": "0055AED6DCD90281E5",
        "event_name": "ObjectCreated:Put",
        "event_time": "2026-11-23T04:12:09.518Z",
        "region": "us-east-1",
        "source": "s3",
    },
    "s3_folder_marker": {
        "bucket": "data-lake",
        "key": "events/2026/11/23/",
        "size": 0,
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "version_id": None,
        "sequencer": "0067414C0F00A1B2C3",
        "event_name": "ObjectCreated:Put",
        "event_time": "2026-11-23T04:12:09.518Z",
        "region": "us-east-1",
        "source": "s3",
    },
    "s3_object_removed_delete": {
        "bucket": "data-lake",
        "key": "raw/2026/11/23/orders.csv",
        "size": None,
        "etag": None,
        "version_id": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "sequencer": "0067414D2A7F3B1C90",
        "event_name": "ObjectRemoved:Delete",
        "event_time": "2026-11-23T04:12:09.518Z",
        "region": "us-east-1",
        "source": "s3",
    },
    "s3_success_marker": {
        "bucket": "data-lake",
        "key": "events/2026/11/23/_SUCCESS",
        "size": 0,
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "version_id": "Zb8vYH4pX0kqL2mN7rT1sU3wV5yA6cD9",
        "sequencer": "0067414C1AB2C9A7E0",
        "event_name": "ObjectCreated:Put",
        "event_time": "2026-11-23T04:12:09.518Z",
        "region": "us-east-1",
        "source": "s3",
    },
}


def notification(key: Any = "some/key.csv", **record_fields: Any) -> str:
    """A minimal S3 event notification body with one record; ``record_fields`` override record fields."""
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-23T04:12:09.518Z",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "data-lake"}, "object": {"key": key, "size": 3, "sequencer": "01"}},
    }
    record.update(record_fields)
    return json.dumps({"Records": [record]})


def only_record(body: str | bytes, *, raw_keys: bool = False) -> S3Record:
    parsed = parse_body(body, raw_keys=raw_keys)
    assert parsed.skipped == []
    assert len(parsed.records) == 1, parsed.records
    return parsed.records[0]


def fields_of(record: S3Record) -> dict[str, Any]:
    return {name: getattr(record, name) for name in AWS_SAMPLE}


# --- every fixture -----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(SINGLE_RECORD_FIXTURES))
def test_each_single_record_fixture_parses_to_its_documented_fields(fixture: str) -> None:
    record = only_record(load_fixture(fixture))
    assert fields_of(record) == SINGLE_RECORD_FIXTURES[fixture]


@pytest.mark.parametrize("fixture", sorted(SINGLE_RECORD_FIXTURES))
def test_bytes_and_text_bodies_parse_the_same(fixture: str) -> None:
    text = load_fixture(fixture)
    assert only_record(text.encode("utf-8")) == only_record(text)


def test_several_records_in_one_body_come_out_in_order() -> None:
    parsed = parse_body(load_fixture("s3_multiple_records"))
    assert parsed.skipped == []
    assert [(r.key, r.event_name, r.size) for r in parsed.records] == [
        ("raw/2026/11/23/orders.csv", "ObjectCreated:Put", 52311),
        ("events/2026/11/23/part-00000-1c2e.snappy.parquet", "ObjectCreated:CompleteMultipartUpload", 7340032),
        ("events/2026/11/23/_SUCCESS", "ObjectCreated:Put", 0),
    ]
    assert {r.bucket for r in parsed.records} == {"data-lake"}
    assert [r.sequencer for r in parsed.records] == ["0067414C19D6A3B2F1", "0067414C1A0012C4D8", "0067414C1AB2C9A7E0"]


def test_sns_wrapping_is_transparent() -> None:
    assert only_record(load_fixture("sns_s3_put")) == only_record(load_fixture("s3_put_aws_sample"))
    assert only_record(load_fixture("sns_eventbridge_object_created")) == only_record(
        load_fixture("eventbridge_object_created")
    )


def test_an_s3_record_keeps_its_original_payload_with_the_key_still_encoded() -> None:
    record = only_record(load_fixture("s3_put_aws_sample"))
    original = load_fixture_json("s3_put_aws_sample")["Records"][0]
    assert record.raw == original
    assert json.loads(record.event_json()) == original
    assert record.raw["s3"]["object"]["key"] == "photos/2026/Happy+Face+%2B1+caf%C3%A9.jpg"


def test_an_eventbridge_record_keeps_the_whole_event() -> None:
    record = only_record(load_fixture("sns_eventbridge_object_created"))
    assert record.raw == load_fixture_json("eventbridge_object_created")
    assert record.uri == "s3://data-lake/raw/2026/11/23/daily orders.csv"


def test_record_event_type_carries_the_s3_prefix_routes_use() -> None:
    record = only_record(load_fixture("s3_object_removed_delete"))
    assert record.event_name == "ObjectRemoved:Delete"
    assert record.event_type == "s3:ObjectRemoved:Delete"


def test_summary_leaves_out_the_raw_payload() -> None:
    summary = only_record(load_fixture("s3_success_marker")).summary()
    assert "raw" not in summary
    assert summary["key"] == "events/2026/11/23/_SUCCESS"


# --- EventBridge event names -------------------------------------------------------------------


def eventbridge_body(detail_type: str, **detail: Any) -> str:
    event = load_fixture_json("eventbridge_object_created")
    event["detail-type"] = detail_type
    event["detail"].pop("reason")
    event["detail"].update(detail)
    return json.dumps(event)


@pytest.mark.parametrize(
    ("detail_type", "detail", "event_name"),
    [
        ("Object Created", {"reason": "PutObject"}, "ObjectCreated:Put"),
        ("Object Created", {"reason": "CopyObject"}, "ObjectCreated:Copy"),
        ("Object Created", {"reason": "CompleteMultipartUpload"}, "ObjectCreated:CompleteMultipartUpload"),
        ("Object Created", {"reason": "POST Object"}, "ObjectCreated:Post"),
        ("Object Deleted", {"deletion-type": "Permanently Deleted"}, "ObjectRemoved:Delete"),
        ("Object Deleted", {"deletion-type": "Delete Marker Created"}, "ObjectRemoved:DeleteMarkerCreated"),
        ("Object Restore Completed", {}, "ObjectRestore:Completed"),
        ("Object Tags Added", {}, "ObjectTagging:Put"),
    ],
)
def test_eventbridge_detail_types_map_to_s3_event_names(
    detail_type: str, detail: dict[str, str], event_name: str
) -> None:
    assert only_record(eventbridge_body(detail_type, **detail)).event_name == event_name


# --- key decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("a+b%2Bc", "a b+c"),  # AWS: '+' is a space, a literal plus is %2B
        ("caf%C3%A9", "café"),  # percent-encoded UTF-8
        ("daily%20report.csv", "daily report.csv"),  # LocalStack writes %20 for a space
        ("plain/key_without-escapes.txt", "plain/key_without-escapes.txt"),
        ("100%25+done", "100% done"),  # decoded exactly once: %25 -> %, not then re-read as an escape
        ("%E2%9C%93+%F0%9F%93%81/x", "✓ 📁/x"),
    ],
)
def test_keys_are_decoded_the_way_s3_encodes_them(encoded: str, decoded: str) -> None:
    assert decode_key(encoded) == decoded
    assert only_record(notification(encoded)).key == decoded


@pytest.mark.parametrize("encoded", ["a+b%2Bc", "caf%C3%A9", "daily%20report.csv", "caf%C3"])
def test_raw_keys_leaves_keys_untouched(encoded: str) -> None:
    assert only_record(notification(encoded), raw_keys=True).key == encoded


def test_raw_keys_applies_to_eventbridge_events_too() -> None:
    record = only_record(load_fixture("eventbridge_object_created"), raw_keys=True)
    assert record.key == "raw/2026/11/23/daily+orders.csv"


# --- skipped, not errors -----------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["s3_test_event", "sns_s3_test_event"])
def test_the_s3_test_event_is_skipped_with_reason_test_event(fixture: str) -> None:
    parsed = parse_body(load_fixture(fixture))
    assert parsed.records == []
    assert [s.reason for s in parsed.skipped] == [SKIP_TEST_EVENT]
    assert "amzn-s3-demo-bucket" in parsed.skipped[0].detail


# --- invalid bodies ----------------------------------------------------------------------------


def sns_wrapping(message: Any) -> str:
    envelope = load_fixture_json("sns_s3_put")
    envelope["Message"] = message
    return json.dumps(envelope)


def without_object_key() -> str:
    document = load_fixture_json("s3_put_aws_sample")
    del document["Records"][0]["s3"]["object"]["key"]
    return json.dumps(document)


def second_record_broken() -> str:
    document = load_fixture_json("s3_multiple_records")
    document["Records"][1]["s3"]["bucket"] = "data-lake"
    return json.dumps(document)


def eventbridge_without_key() -> str:
    event = load_fixture_json("eventbridge_object_created")
    del event["detail"]["object"]["key"]
    return json.dumps(event)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("this is not json {", "message body is not JSON", id="not-json"),
        pytest.param("", "message body is not JSON", id="empty"),
        pytest.param(b"\xff\xfe{}", "not UTF-8", id="not-utf8"),
        pytest.param(load_fixture("s3_put_aws_sample").replace("{", "[", 1), "not JSON", id="truncated-json"),
        pytest.param('[{"Records": []}]', "message body is JSON list, not an S3 event notification", id="json-list"),
        pytest.param('"Records"', "JSON str", id="json-string"),
        pytest.param('{"hello": "world", "Type": "Other"}', "top-level keys: Type, hello", id="unknown-shape"),
        pytest.param('{"Records": []}', "S3 notification with no Records", id="no-records"),
        pytest.param('{"Records": {"eventVersion": "2.1"}}', "no Records", id="records-not-a-list"),
        pytest.param('{"Records": ["x"]}', "Records[0] is not an object", id="record-not-an-object"),
        pytest.param(without_object_key(), "Records[0].s3.object.key is missing", id="missing-key"),
        pytest.param(notification(eventVersion="1.0"), "Records[0].eventVersion '1.0' is not 2.x", id="version-1.0"),
        pytest.param(notification(eventVersion=None), "Records[0].eventVersion None is not 2.x", id="no-version"),
        pytest.param(notification(s3="x"), "Records[0].s3 is missing or not an object", id="s3-not-object"),
        pytest.param(notification(key=17), "Records[0].s3.object.key is missing or not a string", id="key-number"),
        pytest.param(notification(key=""), "Records[0].s3.object.key is missing", id="key-empty"),
        pytest.param(notification(eventName=None), "Records[0].eventName is missing", id="no-event-name"),
        pytest.param(
            notification("caf%C3"), "Records[0].s3.object.key 'caf%C3' is not valid percent-encoded UTF-8", id="bad-pct"
        ),
        pytest.param(
            notification("%FF%FE"),
            "Records[0].s3.object.key '%FF%FE' is not valid percent-encoded UTF-8",
            id="bad-utf8",
        ),
        pytest.param(second_record_broken(), "Records[1].s3.bucket is missing or not an object", id="second-record"),
        pytest.param(sns_wrapping("not json"), "SNS Message is not JSON", id="sns-message-not-json"),
        pytest.param(sns_wrapping({"Records": []}), "SNS notification whose Message is not a string", id="sns-dict"),
        pytest.param(
            sns_wrapping(load_fixture("sns_s3_put")), "SNS notification nested inside another SNS", id="sns-in-sns"
        ),
        pytest.param(eventbridge_without_key(), "detail.object.key is missing", id="eventbridge-no-key"),
    ],
)
def test_invalid_bodies_raise_message_format_error_saying_what_is_wrong(body: str | bytes, message: str) -> None:
    with pytest.raises(MessageFormatError) as caught:
        parse_body(body)
    assert message in str(caught.value)


def test_a_non_integer_size_is_rejected_with_the_field_and_value() -> None:
    document = json.loads(notification())
    document["Records"][0]["s3"]["object"]["size"] = "1024"
    with pytest.raises(MessageFormatError, match=r"Records\[0\]\.s3\.object\.size '1024' is not an integer"):
        parse_body(json.dumps(document))


def test_a_message_format_error_is_permanent_so_the_message_is_dead_lettered() -> None:
    with pytest.raises(PermanentError):
        parse_body("nope")


def test_a_bad_key_is_accepted_when_keys_are_raw() -> None:
    assert only_record(notification("caf%C3"), raw_keys=True).key == "caf%C3"


def test_one_bad_record_rejects_the_whole_message() -> None:
    # Half-processing a message would ack records that were never handled.
    with pytest.raises(MessageFormatError):
        parse_body(second_record_broken())
