"""``watcher dlq export OUT.jsonl`` (every message with its attributes, to keep before a purge; nothing
is deleted) and ``watcher dlq purge --yes`` (empties the DLQ: SQS's PurgeQueue, at most once a minute)."""

from __future__ import annotations

import argparse
import json

from watcher.app import load_config
from watcher.commands.dlq.messages import DeadLetterQueue
from watcher.commands.progress import Progress


def cmd_export(args: argparse.Namespace) -> int:
    dlq = DeadLetterQueue(load_config(args.config))
    progress = Progress(f"export of {dlq.url}", ("exported",), total=dlq.depth())
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            for letter in dlq.read(args.visibility):
                line = {
                    "message_id": letter.message_id,
                    "sent_at": letter.sent_at,
                    "route": letter.route,
                    "error": letter.error,
                    "receive_count": letter.receive_count,
                    "attributes": letter.attributes,
                    "system_attributes": letter.system,
                    "body": letter.body,
                }
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                progress.advance(exported=1)
    finally:
        dlq.release()
    progress.close([f"written to {args.output}; the DLQ is unchanged"])
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    dlq = DeadLetterQueue(load_config(args.config))
    if not args.yes:
        print(f"this deletes every message of {dlq.url} ({dlq.depth()} now): add --yes (and export them first?)")
        return 2
    count = dlq.depth()
    dlq.sqs.purge_queue(QueueUrl=dlq.url)
    print(f"purged {dlq.url} (about {count} messages)")
    return 0
