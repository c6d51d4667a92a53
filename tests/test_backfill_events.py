"""Synthetic events of `watcher backfill` are S3's: keys encoded exactly as S3 encodes them (the
worker's decoding gives back every key, whatever its characters), the object's fields carried, and
the same request id as the object's original event where S3 names a version."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from watcher.commands.backfill.events import ExistingObject
from watcher.envelope import parse_body
from watcher.records import decode_key, encode_key

# S3 keys are UTF-8 of up to 1024 bytes: any character but a lone surrogate.
keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300)
WHEN = datetime(2026, 11, 23, 4, 12, 9, 518000, tzinfo=UTC)


@given(keys)
@example("file with spaces.csv")
@example("a+b%2Bc%25d")
@example("100% done +1")
@example("ünïcödé/日本語/emoji 🎉.txt")
def test_decoding_an_encoded_key_gives_the_key_back(key: str) -> None:
    assert decode_key(encode_key(key)) == key


def test_keys_are_encoded_as_s3_encodes_them() -> None:
    assert encode_key("raw/in put/file 1+2.csv") == "raw/in+put/file+1%2B2.csv"
    assert encode_key("100%") == "100%25"
    assert encode_key("é") == "%C3%A9"


@given(keys)
def test_the_worker_parses_the_synthetic_event_back_to_the_object(key: str) -> None:
    existing = ExistingObject("lake", key, 42, "0123456789abcdef0123456789abcdef", WHEN, "3HL4kqtJlcpXroDTDmJ")
    [record] = parse_body(existing.notification("us-east-1")).records
    assert (record.bucket, record.key, record.size, record.etag) == ("lake", key, 42, existing.etag)
    assert (record.version_id, record.sequencer, record.event_time) == (
        "3HL4kqtJlcpXroDTDmJ",
        existing.sequencer,
        "2026-11-23T04:12:09.518Z",
    )
    assert record.request_id == existing.record().request_id


def test_a_versioned_object_has_the_request_id_of_its_original_event() -> None:
    original = parse_body(
        '{"Records": [{"eventVersion": "2.1", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "lake"},'
        ' "object": {"key": "in/a+b.csv", "size": 3, "eTag": "e", "versionId": "v1", "sequencer": "0055AED6DC"}}}]}'
    ).records[0]
    backfilled = ExistingObject("lake", "in/a b.csv", 3, "e", WHEN, "v1").record()
    assert backfilled.request_id == original.request_id


def test_a_rewritten_object_gets_a_new_request_id_and_a_second_backfill_the_same() -> None:
    first = ExistingObject("lake", "in/a.csv", 3, "e", WHEN)
    assert ExistingObject("lake", "in/a.csv", 3, "e", WHEN).record().request_id == first.record().request_id
    later = ExistingObject("lake", "in/a.csv", 3, "e", WHEN.replace(minute=13))
    assert later.record().request_id != first.record().request_id
