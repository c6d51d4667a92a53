"""S3 staging of a ``runtime: batch`` job, done by the worker around the job, and the job's entrypoint.

Before: the job's script and input go to ``<staging>/.watcher/batch/<job name>/`` (under a
``.watcher/`` folder, which routing skips for every route, so no route is fed by it), and the job is
given pre-signed URLs for them and for its result. After: the result tar is downloaded and unpacked
into the local job folder, where the handler treats it like any runtime's output: the log becomes
``log.txt``, and the files of ``output/`` are uploaded only on success, to ``<output>/<REQUEST_ID>/``,
after the same checks. The tar is untrusted: only regular files and folders are unpacked, under
``output/`` only, never through a link (none is ever made), with names that stay inside it. When a
job hands back nothing (killed, or its staging failed), its log is read from its CloudWatch stream.
Every call here blocks.

The entrypoint (``ENTRYPOINT``), a POSIX shell script run as the job's command, holds no credentials:
it downloads ``WATCHER_SCRIPT_URL`` and ``WATCHER_INPUT_URL`` (GET), runs the script with ``/bin/sh``
in ``JOB_DIR`` with the contract's environment (the URLs removed), copies everything it prints to the
container's output (so to the job's CloudWatch log stream) and to ``meta/log.txt``, and uploads to
``WATCHER_RESULT_URL`` (PUT) one tar: ``meta/exit_code``, ``meta/log.txt`` and, only when the script
exited 0, ``job/output/``; then exits with the script's exit code. The image needs ``/bin/sh``,
``tar``, and ``curl`` or ``python3`` (``wget`` can download but not upload), and no ``ENTRYPOINT``
that swallows the command. A staging failure exits 70 and says why on stderr, uploading nothing.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from watcher.aws import client
from watcher.config.schema import AwsConfig
from watcher.errors import PermanentError, RetryableError, error_code
from watcher.handlers.container.options import ContainerOptions, parse_s3_uri
from watcher.handlers.container.outputs import MAX_OUTPUT_ENTRIES
from watcher.handlers.container.workspace import JobDir
from watcher.records import JOB_LOG_FOLDER

JOB_ROOT = "/tmp/watcher"
JOB_DIR = f"{JOB_ROOT}/job"  # the script's working directory, with input/, output/ and script.sh
STAGING_FAILED = 70

_PYTHON_GET = """import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=120) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f, 1 << 20)"""

_PYTHON_PUT = """import os, sys, urllib.request
with open(sys.argv[1], "rb") as f:
    size = str(os.fstat(f.fileno()).st_size)
    request = urllib.request.Request(sys.argv[2], data=f, method="PUT", headers={"Content-Length": size})
    urllib.request.urlopen(request, timeout=600).read()"""

ENTRYPOINT = f"""set -u
R={JOB_ROOT}
J={JOB_DIR}
say() {{ echo "watcher entrypoint: $*" >&2; }}
give_up() {{ say "$*"; exit {STAGING_FAILED}; }}
have() {{ command -v "$1" >/dev/null 2>&1; }}
get() {{
  if have curl; then curl -fsS --retry 3 -o "$2" "$1"
  elif have python3; then python3 -c '{_PYTHON_GET}' "$1" "$2"
  elif have wget; then wget -q -O "$2" "$1"
  else say "no curl, python3 or wget in this image"; return 1; fi
}}
put() {{
  if have curl; then curl -fsS --retry 3 -T "$1" "$2" >/dev/null
  elif have python3; then python3 -c '{_PYTHON_PUT}' "$1" "$2"
  else say "no curl or python3 in this image to upload the result"; return 1; fi
}}
rm -rf "$R" && mkdir -p "$R/meta" "$J/input" "$J/output" || give_up "cannot make $R"
get "$WATCHER_SCRIPT_URL" "$J/script.sh" || give_up "cannot download the script"
get "$WATCHER_INPUT_URL" "$INPUT_FILE_PATH" || give_up "cannot download the input"
result_url=$WATCHER_RESULT_URL
unset WATCHER_SCRIPT_URL WATCHER_INPUT_URL WATCHER_RESULT_URL
cd "$J" || give_up "cannot enter $J"
{{ /bin/sh "$J/script.sh" </dev/null 2>&1; echo "$?" >"$R/meta/exit_code"; }} | tee "$R/meta/log.txt"
code=$(cat "$R/meta/exit_code" 2>/dev/null) || code={STAGING_FAILED}
cd "$R" || give_up "cannot enter $R"
if [ "$code" = 0 ]; then tar -cf "$R/result.tar" meta job/output || say "tar reported a problem"
else tar -cf "$R/result.tar" meta || say "tar reported a problem"; fi
put "$R/result.tar" "$result_url" || give_up "cannot upload the result"
exit "$code"
"""

# The longest a SigV4 pre-signed URL may live. Signed with temporary credentials (a role's), it ends
# with them, often within hours: a job left waiting longer fails its download (exit 70) and its unit
# is retried with new URLs.
SIGNED_SECONDS = 7 * 24 * 3600
_OUTPUT = "job/output/"
_MAX_EXIT_CODE_BYTES = 16


@dataclass(frozen=True, slots=True)
class Unpacked:
    exit_code: int | None  # None: the tar had no valid meta/exit_code
    refused: dict[str, int]  # entries under job/output/ not unpacked, by reason


def staging_folder(options: ContainerOptions) -> tuple[str, str]:
    """The bucket and the key prefix under which a batch route's jobs are staged: its ``staging``
    URI, else its first output, then ``.watcher/batch/`` (``watcher render terraform`` grants it)."""
    where = parse_s3_uri(options.runtime_options.get("staging"))
    if where is None:  # validated: without staging there is an output
        where = (options.outputs[0].bucket, options.outputs[0].key_prefix)
    bucket, key_prefix = where
    return bucket, f"{key_prefix}/{JOB_LOG_FOLDER}/batch/" if key_prefix else f"{JOB_LOG_FOLDER}/batch/"


class Staging:
    def __init__(self, aws: AwsConfig, options: ContainerOptions) -> None:
        self._aws = aws
        self.bucket, self._folder = staging_folder(options)
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:  # SigV4, which pre-signed POST/PUT URLs of every region accept
            self._client = client(self._aws, "s3", config=BotoConfig(signature_version="s3v4"))
        return self._client

    def folder(self, job_name: str) -> str:
        return f"{self._folder}{job_name}/"

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


# --- the job's log, from CloudWatch ----------------------------------------------------------------

MAX_LOG_BYTES = 16 << 20  # read no further: the tail is what a failure reason quotes
_MAX_PAGES = 1000


def save_log_stream(logs: Any, group: str, stream: str, path: Path) -> None:
    """Write the stream's messages, one per line, to ``path``; a note instead when it cannot be read.
    Never raises: the job's outcome does not depend on its log."""
    written = 0
    token: dict[str, str] = {}
    with open(path, "ab") as log:
        try:
            for _ in range(_MAX_PAGES):
                page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, **token)
                for event in page.get("events", []):
                    line = f"{event.get('message', '')}\n".encode("utf-8", "replace")
                    written += log.write(line)
                if written > MAX_LOG_BYTES or page.get("nextForwardToken") in (None, token.get("nextToken")):
                    break
                token = {"nextToken": page["nextForwardToken"]}
        except (BotoCoreError, ClientError) as exc:
            log.write(f"[watcher: cannot read the job's log stream {group} {stream}: {exc}]\n".encode())


def console_url(region: str, group: str, stream: str) -> str:
    """The CloudWatch console's page of a log stream (its own double encoding, "$" for "%")."""

    def encode(text: str) -> str:
        return quote(quote(text, safe=""), safe="").replace("%", "$")

    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{encode(group)}/log-events/{encode(stream)}"
    )
