"""The S3 record: one object event, decoded, independent of how it was delivered."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus, unquote_to_bytes

# Container jobs write their logs under a ".watcher/" folder next to their outputs; no route takes
# a key under such a folder as input (watcher.routing), so a job log never triggers anything.
JOB_LOG_FOLDER = ".watcher"
REQUEST_ID_LENGTH = 32  # lowercase hex digits
_HEX = frozenset("0123456789abcdef")


def decode_key(raw_key: str) -> str:
    """Decode an event key the way S3 encodes it: ``+`` is a space, then percent-escapes.

    AWS writes a space as ``+``, LocalStack as ``%20``; ``unquote_plus`` handles both,
    and a literal plus arrives as ``%2B``. Decoding happens exactly once.
    """
    if raw_key.isascii():  # as S3 sends keys: what unquote_plus does then, without its splitting
        return unquote_to_bytes(raw_key.replace("+", " ")).decode("utf-8", "strict")
    return unquote_plus(raw_key, encoding="utf-8", errors="strict")


def encode_key(key: str) -> str:
    """Encode a key the way S3 does in event notifications: a space is ``+``, a plus ``%2B``, a
    percent ``%25``, other characters percent-encoded UTF-8, ``/`` kept. ``decode_key`` undoes it
    exactly (synthetic events of ``watcher backfill`` rely on it: SCAR's raw keys broke on ``+``)."""
    return quote_plus(key, safe="/", encoding="utf-8", errors="strict")


@dataclass(frozen=True, slots=True)
class S3Record:
    """One S3 object event. ``key`` is already decoded (unless the config says keys are raw)."""

    bucket: str
    key: str
    event_name: str  # as S3 writes it, e.g. "ObjectCreated:Put"
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_time: str | None = None
    region: str | None = None
    source: str = "s3"  # s3 | eventbridge: how the event reached us
    raw: Any = None  # the original record, for handlers that pass the whole event on

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def event_type(self) -> str:
        """The event name with the ``s3:`` prefix routes use, e.g. ``s3:ObjectCreated:Put``."""
        return self.event_name if self.event_name.startswith("s3:") else f"s3:{self.event_name}"

    @property
    def is_folder_marker(self) -> bool:
        return self.key.endswith("/")

    @property
    def is_job_log(self) -> bool:
        return f"/{JOB_LOG_FOLDER}/" in f"/{self.key}"

    @property
    def request_id(self) -> str:
        """Deterministic for an object version, so a duplicate event maps to the same id: a hash of
        bucket, key and version id (else sequencer, else ETag)."""
        version = self.version_id or self.sequencer or self.etag or ""
        material = "\0".join((self.bucket, self.key, version))
        return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:REQUEST_ID_LENGTH]

    def summary(self) -> dict[str, Any]:
        fields = asdict(self)
        fields.pop("raw")
        return fields

    def event_json(self) -> str:
        """The record as JSON, the original payload when we have it."""
        return json.dumps(self.raw if self.raw is not None else self.summary(), default=str)


def dataset_of(key: str, suffix: str | None) -> str:
    """The dataset a key belongs to.

    When the route's suffix is a whole file name (a ``_SUCCESS`` marker written last by
    Spark), the dataset is the folder holding it: ``events/2026/11/23/_SUCCESS`` ->
    ``events/2026/11/23``. Otherwise the dataset is the object itself.
    """
    if suffix:
        marker = suffix.lstrip("/")
        head, sep, name = key.rpartition("/")
        if name == marker:
            return head if sep else ""
    return key


def dataset_uri(bucket: str, dataset: str) -> str:
    return f"s3://{bucket}/{dataset}" if dataset else f"s3://{bucket}"


def is_request_id(text: str, *, partial: bool = False) -> bool:
    """Whether ``text`` has the shape of a request id (32 lowercase hex digits), or with
    ``partial``, could be the start of one."""
    length_ok = len(text) <= REQUEST_ID_LENGTH if partial else len(text) == REQUEST_ID_LENGTH
    return length_ok and set(text) <= _HEX
