"""``watcher local up|down|status [--dynamodb]``: the embedded LocalStack (and, with ``--dynamodb``,
DynamoDB Local) for development, demos and tests."""

from __future__ import annotations

import argparse

from watcher.local import dynamodb, localstack


def cmd_local(args: argparse.Namespace) -> int:
    if args.action == "up":
        localstack.up()
        if args.dynamodb:
            dynamodb.up()
        return 0
    if args.action == "down":
        localstack.down()
        dynamodb.down()  # whatever the flag: never leave one running behind
        return 0
    ready, detail = localstack.status()
    print(detail)
    if args.dynamodb:
        up = dynamodb.answers()
        print(f"DynamoDB Local {'answers' if up else 'is not answering'} on {dynamodb.ENDPOINT}")
        ready = ready and up
    return 0 if ready else 1
