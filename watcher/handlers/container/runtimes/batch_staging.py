"""S3 staging of a ``runtime: batch`` job, done by the worker around the job.

Before: the job's script and input go to ``<staging>/.watcher/batch/<job name>/`` (under a
``.watcher/`` folder, which routing skips for every route, so no route is fed by it), and the job is
given pre-signed URLs for them and for its result (watcher.handlers.container.runtimes.
batch_entrypoint). After: the result tar is downloaded and unpacked into the local job folder, where
the handler treats it like any runtime's output: the log becomes ``log.txt``, and the files of
``output/`` are uploaded only on success, to ``<output>/<REQUEST_ID>/``, after the same checks.
The tar is untrusted: only regular files and folders are unpacked, under ``output/`` only, never
through a link (none is ever made), with names that stay inside it. Every call here blocks.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from watcher.aws import botocore_config, credentials_for
from watcher.config.schema import AwsConfig
from watcher.errors import PermanentError, RetryableError, error_code
from watcher.handlers.container.outputs import MAX_OUTPUT_ENTRIES
from watcher.handlers.container.workspace import JobDir
from watcher.records import JOB_LOG_FOLDER

SIGNED_SECONDS = 7 * 24 * 3600  # the longest a SigV4 pre-signed URL may live
_OUTPUT = "job/output/"
_MAX_EXIT_CODE_BYTES = 16


@dataclass(frozen=True, slots=True)
class Unpacked:
    exit_code: int | None  # None: the tar had no valid meta/exit_code
    refused: dict[str, int]  # entries under job/output/ not unpacked, by reason


class Staging:
    def __init__(self, aws: AwsConfig, bucket: str, key_prefix: str) -> None:
        self._aws = aws
        self.bucket = bucket
        self._folder = f"{key_prefix}/" if key_prefix else ""
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:  # SigV4, which pre-signed POST/PUT URLs of every region accept
            session = boto3.Session(profile_name=self._aws.profile, region_name=self._aws.region)
            config = botocore_config().merge(BotoConfig(signature_version="s3v4"))
            self._client = session.client(
                "s3", endpoint_url=self._aws.endpoint_url, config=config, **credentials_for(self._aws)
            )
        return self._client

    def folder(self, job_name: str) -> str:
        return f"{self._folder}{JOB_LOG_FOLDER}/batch/{job_name}/"

    def stage(self, job: JobDir, job_name: str) -> dict[str, str]:
        """Upload the script and the input; return the entrypoint's URL variables."""
        folder = self.folder(job_name)
        inputs = [path for path in job.input.iterdir() if path.is_file()]
        if len(inputs) != 1:
            raise RetryableError(f"expected one input file in {job.input}, found {len(inputs)}")
        try:
            self._s3().upload_file(str(job.script), self.bucket, f"{folder}script.sh")
            self._s3().upload_file(str(inputs[0]), self.bucket, f"{folder}input")
            return {
                "WATCHER_SCRIPT_URL": self._signed("get_object", f"{folder}script.sh"),
                "WATCHER_INPUT_URL": self._signed("get_object", f"{folder}input"),
                "WATCHER_RESULT_URL": self._signed("put_object", f"{folder}result.tar"),
            }
        except ClientError as exc:
            code = error_code(exc)
            if code in ("AccessDenied", "403", "NoSuchBucket"):
                raise PermanentError(f"cannot stage the job in s3://{self.bucket}/{folder}: {code}") from None
            raise RetryableError(f"cannot stage the job in s3://{self.bucket}/{folder}: {exc}") from None
        except (BotoCoreError, OSError) as exc:
            raise RetryableError(f"cannot stage the job in s3://{self.bucket}/{folder}: {exc}") from None

    def _signed(self, operation: str, key: str) -> str:
        params = {"Bucket": self.bucket, "Key": key}
        return str(self._s3().generate_presigned_url(operation, Params=params, ExpiresIn=SIGNED_SECONDS))

    def fetch_result(self, job: JobDir, job_name: str) -> Unpacked | None:
        """The job's result unpacked into ``job`` (log and outputs); None when it never came."""
        key = f"{self.folder(job_name)}result.tar"
        path = job.root / "result.tar"
        try:
            self._s3().download_file(self.bucket, key, str(path))
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey"):
                return None
            raise RetryableError(f"cannot download s3://{self.bucket}/{key}: {exc}") from None
        except (BotoCoreError, OSError) as exc:
            raise RetryableError(f"cannot download s3://{self.bucket}/{key}: {exc}") from None
        try:
            return unpack_result(path, job)
        except (tarfile.TarError, OSError) as exc:
            raise RetryableError(f"the job's result s3://{self.bucket}/{key} is not a readable tar: {exc}") from None
        finally:
            path.unlink(missing_ok=True)

    def remove(self, job_name: str) -> bool:
        """Delete what was staged for the job (whatever got there); False when it could not."""
        folder = self.folder(job_name)
        try:
            listed = self._s3().list_objects_v2(Bucket=self.bucket, Prefix=folder).get("Contents", [])
            if listed:
                objects = [{"Key": item["Key"]} for item in listed]
                self._s3().delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
        except (BotoCoreError, ClientError):
            return False
        return True

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def unpack_result(path: Path, job: JobDir) -> Unpacked:
    """Read the entrypoint's tar: ``meta/exit_code``, ``meta/log.txt`` -> ``job.log``, and the
    regular files under ``job/output/`` -> ``job.output``. Everything else is refused and counted."""
    exit_code: int | None = None
    refused: Counter[str] = Counter()
    entries = 0
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if name == "meta/exit_code" and member.isfile() and member.size <= _MAX_EXIT_CODE_BYTES:
                exit_code = _exit_code(_read(tar, member))
            elif name == "meta/log.txt" and member.isfile():
                with _open_member(tar, member) as source, open(job.log, "wb") as log:
                    shutil.copyfileobj(source, log, 1 << 20)
            elif name.startswith(_OUTPUT):
                entries += 1
                reason = "too_many" if entries > MAX_OUTPUT_ENTRIES else _unpack_output(tar, member, job.output)
                if reason:
                    refused[reason] += 1
    return Unpacked(exit_code, dict(refused))


def _unpack_output(tar: tarfile.TarFile, member: tarfile.TarInfo, output: Path) -> str | None:
    """Unpack one entry under ``output``; the reason it was refused, or None."""
    relative = member.name.removeprefix("./")[len(_OUTPUT) :].rstrip("/")
    parts = relative.split("/")
    if not relative:
        return None  # job/output/ itself
    if any(part in ("", ".", "..") for part in parts) or "\0" in relative:
        return "bad_name"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if not (member.isfile() or member.isdir()):
        return "special"
    target = output.joinpath(*parts)
    try:
        if member.isdir():
            target.mkdir(mode=0o755, parents=True, exist_ok=True)
            return None
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        # No link is ever unpacked, so no path component can be one; O_NOFOLLOW all the same.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as destination, _open_member(tar, member) as source:
            shutil.copyfileobj(source, destination, 1 << 20)
    except OSError:  # a name both a file and a folder, too long, or not representable
        return "bad_name"
    return None


def _open_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Any:
    source = tar.extractfile(member)
    if source is None:
        raise tarfile.ReadError(f"{member.name} has no content")
    return source


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    with _open_member(tar, member) as source:
        return bytes(source.read())


def _exit_code(data: bytes) -> int | None:
    text = data.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() and 0 <= int(text) <= 255 else None
