"""``watcher local up|down|status``: the embedded LocalStack for development, demos and tests."""

from __future__ import annotations

import argparse

from watcher.local import localstack


def cmd_local(args: argparse.Namespace) -> int:
    if args.action == "up":
        localstack.up()
        return 0
    if args.action == "down":
        localstack.down()
        return 0
    ready, detail = localstack.status()
    print(detail)
    return 0 if ready else 1
