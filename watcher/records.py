"""The S3 record: one object event, decoded, independent of how it was delivered."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote_plus


def decode_key(raw_key: str) -> str:
    """Decode an event key the way S3 encodes it: ``+`` is a space, then percent-escapes.

    AWS writes a space as ``+``, LocalStack as ``%20``; ``unquote_plus`` handles both,
    and a literal plus arrives as ``%2B``. Decoding happens exactly once.
    """
    return unquote_plus(raw_key, encoding="utf-8", errors="strict")


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
