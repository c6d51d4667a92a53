"""The worker's own CPU per message, without LocalStack or the AWS SDK.

An on-demand benchmark, not a test. ``benchmarks/throughput.py`` measures the real thing, but on two
shared cores its rounds move by 10-20 % with the machine, so it cannot tell a change of a few
microseconds per message. This one runs the real ``Worker`` (pollers, capacity, one task per
message, dispatch through the ``log`` route of throughput.py's config, the deleter, the one JSON line
per message at ``info`` written to a file, the metrics) against an in-process stand-in for the SQS
client that answers at once, and reports the process's CPU time per message::

    python benchmarks/worker_overhead.py                    # 40,000 messages, 5 runs, median
    python benchmarks/worker_overhead.py --messages 100000 --runs 3

The stand-in is a fake, named so: it replaces ``watcher.worker.loop.aio_session`` in this process
only. Its bodies are throughput.py's (one Put record, a percent-encoded key); building its answers
costs a few microseconds per message, counted in the figure. Compare two trees by running the script
of each (``PYTHONPATH=<other tree>`` puts the other ``watcher`` first), alternately.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # the same bodies and route as the LocalStack benchmark

QUEUE_URL = "http://127.0.0.1:1/000000000000/overhead"


class StandInSqs:
    """Answers the worker's SQS calls at once: ``n`` messages, then empty receives."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sent = 0
        self.deleted = 0
        self.receiving = asyncio.Event()
        self.drained = asyncio.Event()
        self._bodies = [throughput.s3_event_body(i) for i in range(200)]

    async def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        policy = {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:overhead-dlq", "maxReceiveCount": 5}
        return {
            "Attributes": {
                "QueueArn": "arn:aws:sqs:us-east-1:000000000000:overhead",
                "RedrivePolicy": json.dumps(policy),
            }
        }

    async def get_queue_url(self, **_: Any) -> dict[str, Any]:
        return {"QueueUrl": QUEUE_URL + "-dlq"}

    async def receive_message(self, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        self.receiving.set()
        await asyncio.sleep(0)
        count = min(MaxNumberOfMessages, self.n - self.sent)
        if count <= 0:
            await asyncio.sleep(0.5)
            return {}
        messages = []
        sent_ms = str(int(time.time() * 1000))
        for index in range(self.sent, self.sent + count):
            messages.append(
                {
                    "MessageId": str(uuid.UUID(int=index)),
                    "ReceiptHandle": f"receipt-{index}-" + "x" * 150,
                    "Body": self._bodies[index % len(self._bodies)],
                    "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": sent_ms},
                }
            )
        self.sent += count
        return {"Messages": messages}

    async def delete_message_batch(self, Entries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        self.deleted += len(Entries)
        if self.deleted >= self.n:
            self.drained.set()
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}

    async def change_message_visibility_batch(self, Entries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}


class StandInSession:
    def __init__(self, sqs: StandInSqs) -> None:
        self._sqs = sqs

    def create_client(self, *_: Any, **__: Any) -> contextlib.AbstractAsyncContextManager[StandInSqs]:
        @contextlib.asynccontextmanager
        async def client() -> AsyncIterator[StandInSqs]:
            yield self._sqs

        return client()


def one_run(n: int, config_path: str) -> float:
    """In this process: configure logging to stdout (a file), run the worker to drain ``n``
    messages, return its CPU microseconds per message."""
    from watcher.app import load_config
    from watcher.logs import configure_logging
    from watcher.worker import loop

    configure_logging("info", "json")
    sqs = StandInSqs(n)
    loop.aio_session = lambda _aws: StandInSession(sqs)  # type: ignore[assignment,return-value]

    async def drain() -> float:
        worker = loop.Worker(load_config(config_path))
        running = asyncio.create_task(worker.run())
        await sqs.receiving.wait()
        started = time.process_time()
        await sqs.drained.wait()
        while worker.processed < n:  # noqa: ASYNC110  (the worker's own counter: the last deletes' answers)
            await asyncio.sleep(0.001)
        cpu = time.process_time() - started
        worker.request_stop()
        await running
        return cpu / n * 1e6

    import uvloop

    return uvloop.run(drain())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--one", metavar="CONFIG", help=argparse.SUPPRESS)  # a child run
    args = parser.parse_args()
    if args.one:
        print(f"{one_run(args.messages, args.one):.2f}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="watcher-overhead-") as workdir:
        config = throughput.worker_config("http://127.0.0.1:1", QUEUE_URL, 20, 0, "info")
        config_path = Path(workdir) / "watcher.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        figures = []
        for run in range(args.runs):
            with (Path(workdir) / "worker.log").open("wb") as log:  # each run in a fresh process
                child = subprocess.run(
                    [sys.executable, __file__, "--messages", str(args.messages), "--one", str(config_path)],
                    stdout=log,
                    stderr=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
                    check=False,
                )
            if child.returncode != 0:
                print(child.stderr, file=sys.stderr)
                return 1
            figures.append(float(child.stderr.strip().splitlines()[-1]))
            print(f"run {run + 1}/{args.runs}: {figures[-1]:.1f} us of CPU per message", flush=True)
            lines = (Path(workdir) / "worker.log").read_bytes().count(b'"event":"message done"')
            if lines != args.messages:
                print(f"expected {args.messages} 'message done' lines, found {lines}", file=sys.stderr)
                return 1
    print(f"median of {args.runs}: {statistics.median(figures):.1f} us of the worker's CPU per message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
