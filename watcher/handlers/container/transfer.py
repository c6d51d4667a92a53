"""S3 transfers of container jobs: the input downloaded to disk, outputs uploaded from disk.

boto3's transfer manager streams to and from files (never the whole object in memory) and switches
to ranged / multipart transfers above ``MULTIPART_THRESHOLD``. It is blocking, so every call runs in
watcher.blocking's pool.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from watcher.aws import client
from watcher.blocking import run_blocking
from watcher.config.schema import AwsConfig
from watcher.errors import PermanentError, RetryableError, error_code
from watcher.records import S3Record

MULTIPART_THRESHOLD = 64 << 20
_CONFIG = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=32 << 20, max_concurrency=4)
_GONE = {"404", "NoSuchKey", "NoSuchVersion", "NoSuchBucket"}
_DENIED = {"403", "AccessDenied"}


class S3Transfer:
    def __init__(self, aws: AwsConfig) -> None:
        self._aws = aws
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:  # boto3 clients are thread-safe once made; make it once
            self._client = client(self._aws, "s3")
        return self._client

    async def download(self, record: S3Record, path: Path) -> int:
        """Stream the object (the version the event names, when it names one) to ``path``;
        return its size."""
        extra = {"VersionId": record.version_id} if record.version_id else None

        def download() -> int:
            self._s3().download_file(record.bucket, record.key, str(path), extra, None, _CONFIG)
            path.chmod(0o644)  # whatever the umask: the job may run as another user
            return path.stat().st_size

        try:
            return await run_blocking(download)
        except ClientError as exc:
            code = error_code(exc)
            if code in _GONE:
                raise PermanentError(f"{record.uri} no longer exists ({code})") from None
            if code in _DENIED:
                raise PermanentError(f"access denied reading {record.uri}") from None
            raise RetryableError(f"cannot download {record.uri}: {exc}") from None
        except (BotoCoreError, OSError) as exc:
            raise RetryableError(f"cannot download {record.uri}: {exc}") from None

    async def upload(self, source: BinaryIO, bucket: str, key: str, metadata: dict[str, str]) -> None:
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        extra = {"ContentType": content_type, "Metadata": {k: quote(v, safe="/:") for k, v in metadata.items()}}
        try:
            await run_blocking(self._s3().upload_fileobj, source, bucket, key, extra, None, _CONFIG)
        except ClientError as exc:
            code = error_code(exc)
            if code in _DENIED or code == "NoSuchBucket":
                raise PermanentError(f"cannot write s3://{bucket}/{key}: {code}") from None
            raise RetryableError(f"cannot upload s3://{bucket}/{key}: {exc}") from None
        except (BotoCoreError, OSError) as exc:
            raise RetryableError(f"cannot upload s3://{bucket}/{key}: {exc}") from None
