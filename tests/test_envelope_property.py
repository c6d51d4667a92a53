"""Properties of the parser: whatever arrives, the only failure is MessageFormatError (a message that
is dead-lettered with a reason), never a crash that would redeliver the poison message forever; and
an encoded key always decodes back to the key that was written."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.fixtures import load_fixture_json as _load_fixture_json
from watcher.envelope import parse_body
from watcher.errors import MessageFormatError
from watcher.records import decode_key


@cache
def _fixture(name: str) -> Any:
    return _load_fixture_json(name)


def load_fixture_json(name: str) -> Any:
    """A fresh copy of a fixture document (read from disk once)."""
    return copy.deepcopy(_fixture(name))


# Enough examples to find a crash in the parser's few branches, few enough to keep the unit suite fast;
# no example database, so that a run leaves nothing behind.
fuzz = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)

# Values placed at the fields the parser looks at, so that generated documents reach deep code paths
# instead of being rejected at the top level.
_SHAPE_KEYS = [
    "Records",
    "Type",
    "Message",
    "Event",
    "source",
    "detail",
    "detail-type",
    "eventVersion",
    "eventName",
    "s3",
    "bucket",
    "object",
    "name",
    "key",
    "size",
    "reason",
    "deletion-type",
]
shaped_values = st.recursive(
    json_scalars | st.sampled_from(["2.1", "1.0", "Notification", "aws.s3", "s3:TestEvent", "Object Created", "%C3"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(_SHAPE_KEYS), children, max_size=6)
    ),
    max_leaves=40,
)


def assert_parses_or_rejects(body: str | bytes) -> None:
    try:
        parsed = parse_body(body)
    except MessageFormatError as exc:
        assert str(exc), "a rejection must say why"
    else:
        assert parsed.records or parsed.skipped


@fuzz
@given(st.binary(max_size=512))
@example(b"\xff")
@example(b'{"Records": [1]}')
@example(b"[" * 100_000)  # deeper than the recursion limit
def test_arbitrary_bytes_only_ever_raise_message_format_error(body: bytes) -> None:
    assert_parses_or_rejects(body)


@fuzz
@given(st.text(max_size=512))
@example("")
@example("\ufeff{}")
@example("1" * 5000)  # longer than Python's int-parsing limit
@example('{"Records": [{"eventVersion": "2.1", "s3": {"bucket": {"name": "b"}, "object": {"key": "\\ud800"}}}]}')
def test_arbitrary_text_only_ever_raises_message_format_error(body: str) -> None:
    assert_parses_or_rejects(body)


@fuzz
@given(json_values)
def test_arbitrary_json_values_only_ever_raise_message_format_error(document: Any) -> None:
    assert_parses_or_rejects(json.dumps(document))


@fuzz
@given(shaped_values)
def test_json_shaped_like_notifications_only_ever_raises_message_format_error(document: Any) -> None:
    assert_parses_or_rejects(json.dumps(document))
    # The same document delivered through SNS fails (or succeeds) the same way.
    wrapped = json.dumps({"Type": "Notification", "Message": json.dumps(document)})
    assert_parses_or_rejects(wrapped)


@fuzz
@given(st.dictionaries(st.sampled_from(["key", "size", "eTag", "versionId", "sequencer"]), json_values))
def test_arbitrary_object_fields_in_a_real_notification_only_raise_message_format_error(obj: dict[str, Any]) -> None:
    document = load_fixture_json("s3_put_aws_sample")
    document["Records"][0]["s3"]["object"] = obj
    assert_parses_or_rejects(json.dumps(document))


def notification_with_key(encoded_key: str) -> str:
    document = load_fixture_json("s3_put_aws_sample")
    document["Records"][0]["s3"]["object"]["key"] = encoded_key
    return json.dumps(document)


def eventbridge_with_key(encoded_key: str) -> str:
    document = load_fixture_json("eventbridge_object_created")
    document["detail"]["object"]["key"] = encoded_key
    return json.dumps({"Type": "Notification", "Message": json.dumps(document)})


@fuzz
@given(st.text(min_size=1, max_size=200))
@example("a b+c")
@example("café/100% done")
@example("%20 is not a space here")
@example("+")
@example("événements/2026/11/23/_SUCCESS")
def test_a_key_encoded_the_way_aws_encodes_it_decodes_to_the_original(key: str) -> None:
    encoded = quote_plus(key, safe="/")
    assert parse_body(notification_with_key(encoded)).records[0].key == key
    assert parse_body(eventbridge_with_key(encoded)).records[0].key == key
    assert parse_body(notification_with_key(encoded), raw_keys=True).records[0].key == encoded


def _unquote_plus_or_error(text: str) -> str:
    try:
        return unquote_plus(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return "<UnicodeDecodeError>"


def _decode_key_or_error(text: str) -> str:
    try:
        return decode_key(text)
    except UnicodeDecodeError:
        return "<UnicodeDecodeError>"


# Escapes, half escapes, pluses, ASCII and not: decode_key's shortcut for ASCII keys must agree with
# unquote_plus on all of it, malformed UTF-8 included.
_KEY_PIECES = st.sampled_from(
    ["a", "/", "+", " ", "%", "%2", "%2B", "%20", "%25", "%C3", "%A9", "%e2%82", "%AC", "é", "€", "\x7f"]
)


@fuzz
@given(st.lists(_KEY_PIECES, max_size=20).map("".join) | st.text(max_size=60))
@example("caf%C3%A9+daily%20report%2B1.csv")
@example("caf%C3")
@example("caf%C3é")
def test_decode_key_agrees_with_unquote_plus(raw: str) -> None:
    assert _decode_key_or_error(raw) == _unquote_plus_or_error(raw)
