"""Message body -> S3 records.

Accepted shapes (see tests/fixtures for real payloads):
- a plain S3 event notification: ``{"Records": [...]}`` with eventVersion 2.x, one or more records;
- the same wrapped by SNS (``Type: Notification``, the notification as a JSON string in ``Message``),
  or delivered by SNS with raw message delivery (then it is the plain shape);
- an EventBridge event from ``aws.s3`` (``detail.bucket.name``, ``detail.object.key``), directly or
  wrapped by SNS;
- ``s3:TestEvent``, which S3 sends when a notification is configured: skipped, not an error.

Anything else raises ``MessageFormatError`` (a permanent error: the message is dead-lettered with the
reason). The parser never raises anything else, whatever the bytes (tests/test_envelope_property.py).
This module knows nothing of SQS, routes or the worker loop, so the Lambda shim can use it as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from watcher.errors import MessageFormatError
from watcher.records import S3Record, decode_key

SKIP_TEST_EVENT = "test_event"
SKIP_FOLDER_MARKER = "folder_marker"
SKIP_EVENT_TYPE = "event_type"
SKIP_NO_ROUTE = "no_route"
SKIP_JOB_LOG = "job_log"  # a container job's own log (".../.watcher/log.txt"): never an input
SKIP_NOT_SELECTED = "not_selected"  # a replay or backfill asked for other routes only

# EventBridge detail-type -> the S3 notification event name it corresponds to.
_EVENTBRIDGE_TYPES = {
    "Object Created": "ObjectCreated",
    "Object Deleted": "ObjectRemoved",
    "Object Restore Initiated": "ObjectRestore:Post",
    "Object Restore Completed": "ObjectRestore:Completed",
    "Object Restore Expired": "ObjectRestore:Delete",
    "Object Tags Added": "ObjectTagging:Put",
    "Object Tags Deleted": "ObjectTagging:Delete",
    "Object ACL Updated": "ObjectAcl:Put",
    "Object Storage Class Changed": "LifecycleTransition",
    "Object Access Tier Changed": "IntelligentTiering",
}
_EVENTBRIDGE_CREATE_REASONS = {
    "PutObject": "Put",
    "POST Object": "Post",
    "PostObject": "Post",
    "CopyObject": "Copy",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
}


@dataclass(frozen=True, slots=True)
class Skip:
    """Something in the message that is deliberately not processed, and why."""

    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    records: list[S3Record] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


def parse_body(body: str | bytes, *, raw_keys: bool = False) -> ParsedMessage:
    """Decode one SQS message body into S3 records (keys decoded unless ``raw_keys``)."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MessageFormatError(f"message body is not UTF-8: {exc}") from None
    try:
        document = orjson.loads(body)  # several times faster than json, on every message
    except (ValueError, RecursionError) as exc:
        raise MessageFormatError(f"message body is not JSON: {_brief(exc)}") from None
    return _parse_document(document, raw_keys=raw_keys, depth=0)


def _parse_document(document: Any, *, raw_keys: bool, depth: int) -> ParsedMessage:
    if not isinstance(document, dict):
        raise MessageFormatError(f"message body is JSON {type(document).__name__}, not an S3 event notification")
    if document.get("Event") == "s3:TestEvent":
        bucket = document.get("Bucket")
        return ParsedMessage(skipped=[Skip(SKIP_TEST_EVENT, f"bucket={bucket}")])
    if "Records" in document:
        return _parse_s3_notification(document["Records"], raw_keys=raw_keys)
    if document.get("Type") == "Notification" and "Message" in document:
        if depth > 0:
            raise MessageFormatError("SNS notification nested inside another SNS notification")
        inner = document["Message"]
        if not isinstance(inner, str):
            raise MessageFormatError("SNS notification whose Message is not a string")
        try:
            inner_document = orjson.loads(inner)
        except (ValueError, RecursionError) as exc:
            raise MessageFormatError(f"SNS Message is not JSON: {_brief(exc)}") from None
        return _parse_document(inner_document, raw_keys=raw_keys, depth=depth + 1)
    if document.get("source") == "aws.s3" and "detail" in document:
        return ParsedMessage(records=[_parse_eventbridge(document, raw_keys=raw_keys)])
    keys = ", ".join(sorted(str(k) for k in document)[:8])
    raise MessageFormatError(f"not an S3, SNS or EventBridge notification (top-level keys: {keys})")


def _parse_s3_notification(records: Any, *, raw_keys: bool) -> ParsedMessage:
    if not isinstance(records, list) or not records:
        raise MessageFormatError("S3 notification with no Records")
    parsed = [_parse_s3_record(index, item, raw_keys=raw_keys) for index, item in enumerate(records)]
    return ParsedMessage(records=parsed)


def _parse_s3_record(index: int, record: Any, *, raw_keys: bool) -> S3Record:
    # Field paths are passed as (index, path) and formatted only for an error: this runs per record.
    if not isinstance(record, dict):
        raise MessageFormatError(f"{_at(index, '')} is not an object")
    version = record.get("eventVersion")
    if not isinstance(version, str) or not version.startswith("2."):
        raise MessageFormatError(f"{_at(index, '.eventVersion')} {version!r} is not 2.x")
    s3 = _mapping(record.get("s3"), index, ".s3")
    bucket = _mapping(s3.get("bucket"), index, ".s3.bucket")
    obj = _mapping(s3.get("object"), index, ".s3.object")
    return S3Record(
        bucket=_text(bucket.get("name"), index, ".s3.bucket.name"),
        key=_key(obj.get("key"), index, ".s3.object.key", raw_keys=raw_keys),
        event_name=_text(record.get("eventName"), index, ".eventName"),
        size=_optional_int(obj.get("size"), index, ".s3.object.size"),
        etag=_optional_text(obj.get("eTag")),
        version_id=_optional_text(obj.get("versionId")),
        sequencer=_optional_text(obj.get("sequencer")),
        event_time=_optional_text(record.get("eventTime")),
        region=_optional_text(record.get("awsRegion")),
        source="s3",
        raw=record,
    )


def _parse_eventbridge(event: dict[str, Any], *, raw_keys: bool) -> S3Record:
    detail = _mapping(event.get("detail"), None, "detail")
    bucket = _mapping(detail.get("bucket"), None, "detail.bucket")
    obj = _mapping(detail.get("object"), None, "detail.object")
    detail_type = _text(event.get("detail-type"), None, "detail-type")
    event_name = _EVENTBRIDGE_TYPES.get(detail_type, f"EventBridge:{detail_type}")
    if event_name == "ObjectCreated":
        reason = detail.get("reason")
        event_name += ":" + _EVENTBRIDGE_CREATE_REASONS.get(str(reason), str(reason or "Put"))
    elif event_name == "ObjectRemoved":
        deletion = detail.get("deletion-type")
        event_name += ":DeleteMarkerCreated" if deletion == "Delete Marker Created" else ":Delete"
    return S3Record(
        bucket=_text(bucket.get("name"), None, "detail.bucket.name"),
        # EventBridge encodes keys like S3 notifications do; the raw_keys switch covers stores that don't.
        key=_key(obj.get("key"), None, "detail.object.key", raw_keys=raw_keys),
        event_name=event_name,
        size=_optional_int(obj.get("size"), None, "detail.object.size"),
        etag=_optional_text(obj.get("etag")),
        version_id=_optional_text(obj.get("version-id")),
        sequencer=_optional_text(obj.get("sequencer")),
        event_time=_optional_text(event.get("time")),
        region=_optional_text(event.get("region")),
        source="eventbridge",
        raw=event,
    )


def _at(index: int | None, path: str) -> str:
    """A field's place in the message: ``Records[0].s3.object.key``, or the path as is."""
    return path if index is None else f"Records[{index}]{path}"


def _mapping(value: Any, index: int | None, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MessageFormatError(f"{_at(index, path)} is missing or not an object")
    return value


def _text(value: Any, index: int | None, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise MessageFormatError(f"{_at(index, path)} is missing or not a string")
    return value


def _key(value: Any, index: int | None, path: str, *, raw_keys: bool) -> str:
    raw = _text(value, index, path)
    if raw_keys:
        return raw
    try:
        return decode_key(raw)
    except UnicodeDecodeError:
        raise MessageFormatError(f"{_at(index, path)} {raw[:200]!r} is not valid percent-encoded UTF-8") from None


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_int(value: Any, index: int | None, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageFormatError(f"{_at(index, path)} {value!r} is not an integer")
    return value


def _brief(exc: BaseException) -> str:
    return str(exc)[:200] or type(exc).__name__
