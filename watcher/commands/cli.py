"""Command line: parse the arguments, then import and run the one command asked for, so that
``watcher explain`` does not pay for the worker's imports (aiobotocore, aiohttp) or the Docker SDK."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

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
    provision.add_argument("--max-receive-count", type=int, default=5, help="deliveries before the DLQ")
    package = command("package", "build a deployment package (AWS Lambda)", "package:cmd_package")
    package.add_argument("target", choices=("lambda",), help="what the package is for")
    package.add_argument("-o", "--output", default="watcher-lambda.zip", help="the zip to write")
    package.add_argument("--arch", choices=("x86_64", "arm64"), default="x86_64", help="the function's architecture")
    package.add_argument(
        "--add", action="append", default=[], metavar="PATH", help="a file or folder to put at the zip's root"
    )
    package.add_argument(
        "--requirement", action="append", default=[], metavar="REQ", help="another pip requirement to include"
    )
    package.add_argument("--include-boto3", action="store_true", help="bundle boto3 instead of the runtime's")
    package.add_argument("--no-check", action="store_true", help="do not validate the configuration first")
    package.add_argument("--no-compile", action="store_true", help="do not compile the modules to .pyc")
    local = command("local", "start, stop or inspect the embedded LocalStack", "local:cmd_local", config=False)
    local.add_argument("action", choices=("up", "down", "status"))
    local.add_argument("--dynamodb", action="store_true", help="also DynamoDB Local on 127.0.0.1:8642 (needs Java)")
    return parser
