"""``watcher dlq redrive``: the whole DLQ back to the source queue through SQS's own message move task
(``StartMessageMoveTask``: at most 500 messages/s, one task per queue at a time), its status polled
and shown until it ends; ``--status`` shows the latest tasks, ``--cancel`` cancels the running one.

The destination is always given (the source queue, or ``--to-queue``): SQS can only move a message
to "its original source" when SQS itself dead-lettered it, while the worker sends permanent failures
to the DLQ directly."""

from __future__ import annotations

import argparse
import time
from typing import Any

from watcher.app import load_config
from watcher.commands.dlq.messages import DeadLetterQueue
from watcher.commands.progress import Progress

MAX_RATE = 500  # SQS's limit for a move task
_DONE = {"COMPLETED", "CANCELLED", "FAILED"}


def cmd_redrive(args: argparse.Namespace) -> int:
    dlq = DeadLetterQueue(load_config(args.config))
    dlq_arn = dlq.attribute("QueueArn")
    if args.status:
        for found in dlq.sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10).get("Results", []):
            print(_describe(found))
        return 0
    if args.cancel:
        running = _running(dlq, dlq_arn)
        if running is None:
            print("no move task is running for this DLQ")
            return 1
        dlq.sqs.cancel_message_move_task(TaskHandle=running["TaskHandle"])
        print(f"cancelled: {_describe(running)}")
        return 0
    destination = args.to_queue or dlq.source.url
    destination_arn = dlq.sqs.get_queue_attributes(QueueUrl=destination, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rate = min(MAX_RATE, args.rate)
    dlq.sqs.start_message_move_task(
        SourceArn=dlq_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=rate
    )
    progress = Progress(f"redrive to {destination}", ("moved",), total=dlq.depth())
    task: dict[str, Any] = {}
    try:
        while True:
            time.sleep(1)
            task = dlq.sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)["Results"][0]
            total = task.get("ApproximateNumberOfMessagesToMove")
            progress.set_total(int(total) if total is not None else None)
            progress.advance(moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)) - progress.counts["moved"])
            if task.get("Status") in _DONE:
                break
    except KeyboardInterrupt:
        progress.close(["stopped watching; the task goes on (see --status, or --cancel)"])
        return 130
    progress.close([_describe(task)])
    return 0 if task.get("Status") == "COMPLETED" else 1


def _running(dlq: DeadLetterQueue, dlq_arn: str) -> dict[str, Any] | None:
    tasks = dlq.sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10).get("Results", [])
    return next((task for task in tasks if task.get("Status") == "RUNNING"), None)


def _describe(task: dict[str, Any]) -> str:
    moved, to_move = task.get("ApproximateNumberOfMessagesMoved"), task.get("ApproximateNumberOfMessagesToMove")
    failure = f", failure: {task['FailureReason']}" if task.get("FailureReason") else ""
    rate = task.get("MaxNumberOfMessagesPerSecond")
    return f"task {task.get('Status')}: {moved}/{to_move} moved at up to {rate}/s{failure}"
