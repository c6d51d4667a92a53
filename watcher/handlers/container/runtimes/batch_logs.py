"""A Batch job's CloudWatch log stream, read back into the job's ``log.txt`` when the job never
handed back its own log (it was killed, or its staging failed). Blocking: called in a thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

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
