"""Run the Lambda entry point in a fresh interpreter of this machine, as the runtime would call it:
``python -m tests.support.lambda_local EVENT_FILE [--remaining-ms N] [--invocations N]``.

The environment gives the configuration (``WATCHER_CONFIG``, ``WATCHER_*``), exactly as in a function. Each
invocation's answer is printed as one line ``{"response": ...}`` after what the shim printed (its log lines and
EMF documents), and the cold start's import time as ``{"imported_ms": ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path


class Context:
    """Stand-in for the Lambda runtime's context object (awslambdaric's ``LambdaContext``): the two things the
    shim reads, the request id and the time left. (Here, not in lambda_events: importing this module must not
    import watcher, whose import the runner measures.)"""

    def __init__(self, seconds: float = 30.0, request_id: str | None = None) -> None:
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("event", type=Path)
    parser.add_argument("--remaining-ms", type=int, default=30_000)
    parser.add_argument("--invocations", type=int, default=1)
    args = parser.parse_args()
    event = json.loads(args.event.read_text())
    started = time.perf_counter()
    from watcher.lambda_ import handler  # the runtime imports the handler's module first

    imported = time.perf_counter()
    print(json.dumps({"imported_ms": round((imported - started) * 1000, 1)}), flush=True)
    for _ in range(args.invocations):
        response = handler.handler(event, Context(args.remaining_ms / 1000))
        print(json.dumps({"response": response}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
