"""The S3 event notification S3 would have sent for an existing object, encoded exactly as S3 encodes
keys (watcher.records.encode_key), with the object's size, ETag, version id and a sequencer, and
marked as a backfill: ``requestParameters.sourceIPAddress`` and ``userIdentity.principalId`` say
``watcher-backfill``, and the message carries a ``watcher.backfill`` attribute.

S3 does not expose an object's notification sequencer; the one made here is the object's
LastModified in hexadecimal milliseconds, so that a rewritten object gets a new request id and a
second backfill of the same object the same one. In a versioned bucket the request id comes from
the version id, as for the object's original event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from watcher.records import S3Record, encode_key

BACKFILL = "watcher-backfill"
ATTR_BACKFILL = "watcher.backfill"  # the run's id: when the backfill started


@dataclass(frozen=True, slots=True)
class ExistingObject:
    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime
    version_id: str | None = None

    @property
    def sequencer(self) -> str:
        return f"{int(self.last_modified.timestamp() * 1000):016X}"

    def record(self) -> S3Record:
        """The record the worker would parse from the event (for routing, before sending)."""
        return S3Record(
            bucket=self.bucket,
            key=self.key,
            event_name="ObjectCreated:Put",
            size=self.size,
            etag=self.etag,
            version_id=self.version_id,
            sequencer=self.sequencer,
            event_time=_iso(self.last_modified),
        )

    def notification(self, region: str) -> str:
        """The message body: an S3 event notification with one record."""
        s3_object: dict[str, object] = {
            "key": encode_key(self.key),
            "size": self.size,
            "eTag": self.etag,
            "sequencer": self.sequencer,
        }
        if self.version_id is not None:
            s3_object["versionId"] = self.version_id
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": _iso(self.last_modified),
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": BACKFILL},
            "requestParameters": {"sourceIPAddress": BACKFILL},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": BACKFILL,
                "bucket": {"name": self.bucket, "arn": f"arn:aws:s3:::{self.bucket}"},
                "object": s3_object,
            },
        }
        return orjson.dumps({"Records": [record]}).decode()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
