"""``watcher dlq stats`` and ``watcher dlq list``: what is in the dead-letter queue, and why. Both
read with a short visibility timeout, never delete, and give every message back when done."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter

from watcher.app import load_config
from watcher.commands.dlq.messages import DeadLetter, DeadLetterQueue, Selection
from watcher.commands.progress import parse_duration

AGE_BUCKETS = ((3600, "< 1 hour"), (86400, "1 hour - 1 day"), (7 * 86400, "1 - 7 days"), (float("inf"), "> 7 days"))


def selection_of(args: argparse.Namespace) -> Selection:
    """The filters shared by list and replay."""
    described = []
    if args.route:
        described.append(f"route {args.route}")
    if args.error_match:
        described.append(f"error matching /{args.error_match}/")
    if args.older_than:
        described.append(f"older than {args.older_than}")
    return Selection(
        route=args.route,
        error_match=re.compile(args.error_match) if args.error_match else None,
        older_than=parse_duration(args.older_than) if args.older_than else None,
        limit=args.limit,
        description=described,
    )


def cmd_stats(args: argparse.Namespace) -> int:
    dlq = DeadLetterQueue(load_config(args.config))
    try:
        letters = list(dlq.read(args.visibility))
    finally:
        dlq.release()
    now = time.time()
    print(f"dead-letter queue {dlq.url}: {len(letters)} messages")
    if not letters:
        return 0
    redriven = sum(letter.from_redrive for letter in letters)
    print(f"  {redriven} moved by SQS's own redrive (retries exhausted, no watcher.* attributes)")
    print(f"  {len(letters) - redriven} sent by a worker after a permanent failure")
    _table("by route", Counter(letter.route for letter in letters))
    _table("by error (first line)", Counter(letter.error_first_line[:160] for letter in letters))
    _table("by age", Counter(_age_bucket(letter.age(now)) for letter in letters), order=[b for _, b in AGE_BUCKETS])
    oldest = max(letters, key=lambda letter: letter.age(now))
    print(f"oldest: {oldest.message_id}, {_human(oldest.age(now))} old")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    dlq = DeadLetterQueue(load_config(args.config))
    selection = selection_of(args)
    now = time.time()
    try:
        shown = 0
        for letter in selection.pick(dlq.read(args.visibility)):
            shown += 1
            if args.json:
                print(json.dumps({**letter.summary(now), "attributes": letter.attributes, "body": letter.body}))
            else:
                print(_line(letter, now))
    finally:
        dlq.release()
    if not args.json:
        where = f" ({', '.join(selection.description)})" if selection.description else ""
        print(f"{shown} messages{where}", file=sys.stderr)
    return 0


def _line(letter: DeadLetter, now: float) -> str:
    objects = " ".join(letter.objects) or "-"
    return (
        f"{letter.message_id}  {_human(letter.age(now)):>8}  {letter.route}  receives={letter.receive_count}  "
        f"{letter.error_first_line[:200]!r}  {objects}"
    )


def _table(title: str, counts: Counter[str], order: list[str] | None = None) -> None:
    print(f"{title}:")
    keys = [k for k in order if k in counts] if order else [k for k, _ in counts.most_common()]
    width = max(len(str(counts[k])) for k in keys)
    for key in keys:
        print(f"  {counts[key]:>{width}}  {key or '-'}")


def _age_bucket(seconds: float) -> str:
    return next(label for limit, label in AGE_BUCKETS if seconds < limit)


def _human(seconds: float) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
