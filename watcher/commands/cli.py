"""Command line: parse the arguments, then import and run the one command asked for, so that
``watcher explain`` does not pay for the worker's imports (aiobotocore, aiohttp) or the Docker SDK."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from watcher import __version__
from watcher.errors import ConfigError

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    module_name, _, function_name = str(args.command).partition(":")
    command: Command = getattr(importlib.import_module(module_name), function_name)
    try:
        return command(args)
    except ConfigError as exc:
        print(f"watcher: invalid configuration ({exc.source}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watcher", description="SQS-driven S3 file watcher")
    parser.add_argument("--version", action="version", version=f"watcher {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, help_text: str, target: str, config: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(command=f"watcher.commands.{target}")
        if config:
            sub.add_argument("-c", "--config", required=True, help="the YAML configuration file")
        return sub

    command("run", "run the worker until SIGTERM/SIGINT", "run:cmd_run")
    check = command("check", "validate the configuration (and, with --live, the AWS wiring)", "check:cmd_check")
    check.add_argument("--live", action="store_true", help="also check the queue, DLQ and bucket notifications")
    explain = command("explain", "show the records and routes of one SQS message body", "explain:cmd_explain")
    explain.add_argument("message", nargs="?", default="-", help="a file holding the body, or - for stdin")
    provision = command(
        "provision", "create buckets, queue, DLQ and notifications (development)", "provision:cmd_provision"
    )
    provision.add_argument(
        "--max-receive-count", type=int, help="deliveries before the DLQ (default: queue.max_receive_count, 5)"
    )
    render = command("render", "turn the configuration into another tool's input", "render:cmd_render")
    render.add_argument("target", choices=("terraform",), help="terraform: deploy/terraform's variables, as JSON")
    _dlq(commands)
    backfill = command(
        "backfill",
        "send existing objects of a prefix through the routes (or run them here)",
        "backfill.command:cmd_backfill",
    )
    backfill.add_argument("source", metavar="s3://BUCKET/PREFIX", help="the objects to backfill")
    backfill.add_argument("--route", help="only this route")
    backfill.add_argument("--since", metavar="DATE", help="only objects last modified at or after (2026-11-01)")
    backfill.add_argument("--until", metavar="DATE", help="only objects last modified before")
    where = backfill.add_mutually_exclusive_group()
    where.add_argument("--direct", action="store_true", help="run the units here instead of sending them")
    where.add_argument("--to-queue", metavar="URL", help="another queue than the configured one")
    backfill.add_argument("--rate", type=float, help="at most this many objects a second")
    backfill.add_argument("--dry-run", action="store_true", help="list what would be sent; send nothing")
    backfill.add_argument("--resume", action="store_true", help="start after where a stopped backfill got to")
    backfill.add_argument("--checkpoint", type=Path, help="the checkpoint file (default: in the state directory)")
    backfill.add_argument("--ignore-idempotency", action="store_true", help="run units that already completed again")
    local = command("local", "start, stop or inspect the embedded LocalStack", "local:cmd_local", config=False)
    local.add_argument("action", choices=("up", "down", "status"))
    local.add_argument("--dynamodb", action="store_true", help="also DynamoDB Local on 127.0.0.1:8642 (needs Java)")
    return parser


def _dlq(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = commands.add_parser("dlq", help="inspect, replay, redrive, export or purge the dead-letter queue")
    actions = dlq.add_subparsers(required=True, metavar="ACTION")

    def action(name: str, help_text: str, target: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(command=f"watcher.commands.dlq.{target}")
        sub.add_argument("-c", "--config", required=True, help="the YAML configuration file")
        return sub

    def reading(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--visibility", type=int, default=30, help="seconds each message stays hidden while read")

    def filters(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--route", help="only messages of this route (or '(redriven by SQS)')")
        sub.add_argument("--error-match", metavar="REGEX", help="only messages whose watcher.error matches")
        sub.add_argument("--older-than", metavar="AGE", help="only messages sent at least this long ago (2h, 1d)")
        sub.add_argument("--limit", type=int, help="at most this many messages")

    reading(action("stats", "counts by route, by error, by age; nothing deleted", "inspect:cmd_stats"))
    listing = action("list", "one line per message (or --json with bodies); nothing deleted", "inspect:cmd_list")
    filters(listing)
    reading(listing)
    listing.add_argument("--json", action="store_true", help="JSON lines with the whole body, for piping")
    replay = action("replay", "send selected messages back, then delete them from the DLQ", "replay:cmd_replay")
    filters(replay)
    replay.add_argument("--to-queue", metavar="URL", help="another queue than the configured one")
    replay.add_argument("--rate", type=float, default=10.0, help="messages per second (default 10)")
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed; change nothing")
    replay.add_argument("--ignore-idempotency", action="store_true", help="run units that already completed again")
    redrive = action("redrive", "move the whole DLQ back with SQS's move task", "redrive:cmd_redrive")
    redrive.add_argument("--rate", type=int, default=100, help="messages per second, at most 500 (default 100)")
    redrive.add_argument("--to-queue", metavar="URL", help="another queue than the configured one")
    redrive.add_argument("--status", action="store_true", help="show the latest move tasks")
    redrive.add_argument("--cancel", action="store_true", help="cancel the running move task")
    export = action("export", "write every message to a JSON-lines file; nothing deleted", "archive:cmd_export")
    export.add_argument("output", metavar="OUT.jsonl")
    reading(export)
    purge = action("purge", "delete every message of the DLQ", "archive:cmd_purge")
    purge.add_argument("--yes", action="store_true", help="really")
