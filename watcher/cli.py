"""Command line: run, check, explain, provision, local."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence

from watcher import __version__, blocking
from watcher.config import Config, load_config
from watcher.errors import ConfigError, MessageFormatError
from watcher.logs import configure_logging, get_logger


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.command(args)
        return result
    except ConfigError as exc:
        print(f"watcher: invalid configuration ({exc.source}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watcher", description="SQS-driven S3 file watcher")
    parser.add_argument("--version", action="version", version=f"watcher {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, help_text: str, function: object, config: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(command=function)
        if config:
            sub.add_argument("-c", "--config", required=True, help="the YAML configuration file")
        return sub

    command("run", "run the worker until SIGTERM/SIGINT", cmd_run)
    check = command("check", "validate the configuration (and, with --live, the AWS wiring)", cmd_check)
    check.add_argument("--live", action="store_true", help="also check the queue, DLQ and bucket notifications")
    explain = command("explain", "show the records and routes of one SQS message body", cmd_explain)
    explain.add_argument("message", nargs="?", default="-", help="a file holding the body, or - for stdin")
    provision = command("provision", "create buckets, queue, DLQ and notifications (development)", cmd_provision)
    provision.add_argument("--max-receive-count", type=int, default=5, help="deliveries before the DLQ")
    local = command("local", "start, stop or inspect the embedded LocalStack", cmd_local, config=False)
    local.add_argument("action", choices=("up", "down", "status"))
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from watcher.worker.loop import Worker

    config = load_config(args.config)
    configure_logging(config.logging.level, config.logging.format)
    log = get_logger("watcher")
    worker = Worker(config)
    loop = asyncio.new_event_loop()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        name = signal.Signals(signum).name
        if signals_seen == 1:
            log.info(
                "signal received: draining; send it again to exit at once",
                signal=name,
                grace_seconds=config.worker.shutdown_grace_seconds,
            )
            worker.request_stop()
        else:
            log.warning(
                "second signal: exiting now, in-flight messages reappear after their visibility timeout",
                signal=name,
            )
            _exit_now(130)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    code = 0
    try:
        loop.run_until_complete(worker.run())
    except ConfigError as exc:
        log.error("cannot start", problems=exc.problems)
        code = 2
    finally:
        # Idle resolver threads of the default executor would otherwise look like stuck handlers.
        with contextlib.suppress(TimeoutError):
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_default_executor(), 2))
        loop.close()
        blocking.shutdown()
    # A blocking handler cancelled at the end of the grace period may still hold a thread; the
    # interpreter would wait for it at exit, which is exactly what the grace period forbids.
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        log.warning("abandoning handler threads still running after the grace period")
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cmd_check(args: argparse.Namespace) -> int:
    from watcher.composition import feeds

    config = load_config(args.config)
    print(f"{args.config}: valid ({len(config.routes)} routes: {', '.join(r.name for r in config.routes)})")
    for source, targets in feeds(config.routes).items():  # function composition, for the reader
        for target, uri in targets:
            print(f"feeds: route {source} writes to {uri}, which route {target} reads")
    if not args.live:
        return 0
    from watcher.check import check_live

    problems, notes = check_live(config)
    for note in notes:
        print(f"ok: {note}")
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


def cmd_explain(args: argparse.Namespace) -> int:
    from watcher.explain import explain

    config: Config = load_config(args.config)
    if args.message == "-":
        body = sys.stdin.buffer.read()
    else:
        with open(args.message, "rb") as handle:
            body = handle.read()
    try:
        result = explain(config, body)
    except MessageFormatError as exc:
        print(f"watcher explain: {exc}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    from watcher.provision import provision

    config = load_config(args.config)
    provision(config, max_receive_count=args.max_receive_count)
    return 0


def cmd_local(args: argparse.Namespace) -> int:
    from watcher import localstack

    if args.action == "up":
        localstack.up()
        return 0
    if args.action == "down":
        localstack.down()
        return 0
    ready, detail = localstack.status()
    print(detail)
    return 0 if ready else 1
