"""The objects under a prefix, streamed page by page (memory stays flat on millions of keys), in key
order: ListObjectsV2, or ListObjectVersions (latest versions only, deleted objects left out) when the
bucket is versioned, so that each event names its object's version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from watcher.commands.backfill.events import ExistingObject


async def is_versioned(s3: Any, bucket: str) -> bool:
    status = (await s3.get_bucket_versioning(Bucket=bucket)).get("Status")
    return status in ("Enabled", "Suspended")


async def existing_objects(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    versioned: bool,
    start_after: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[tuple[int, list[ExistingObject]]]:
    """Per page: how many objects were listed, and those whose LastModified is in [since, until)."""
    if versioned:
        pages = s3.get_paginator("list_object_versions").paginate(
            Bucket=bucket, Prefix=prefix, **({"KeyMarker": start_after} if start_after else {})
        )
    else:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, **({"StartAfter": start_after} if start_after else {})
        )
    async for page in pages:
        items = page.get("Versions", []) if versioned else page.get("Contents", [])
        if versioned:
            items = [item for item in items if item.get("IsLatest")]
        found = []
        for item in items:
            modified: datetime = item["LastModified"]
            if (since is not None and modified < since) or (until is not None and modified >= until):
                continue
            version = item.get("VersionId") if versioned else None
            found.append(
                ExistingObject(
                    bucket=bucket,
                    key=item["Key"],
                    size=int(item.get("Size", 0)),
                    etag=str(item.get("ETag", "")).strip('"'),
                    last_modified=modified,
                    version_id=version if version and version != "null" else None,
                )
            )
        yield len(items), found
