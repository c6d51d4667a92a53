"""``watcher run``: the worker as a process: logging set up, signals (the first drains, a second
exits at once), and an exit that never waits for handler threads past the grace period."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading

from watcher import blocking
from watcher.app import load_config
from watcher.errors import ConfigError
from watcher.logs import configure_logging, get_logger
from watcher.worker.loop import Worker


def cmd_run(args: argparse.Namespace) -> int:
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
