"""``watcher run``: the worker as a process: logging set up, signals (the first drains, a second
exits at once), systemd's notify protocol when it runs under ``Type=notify`` (watcher.service_notify),
and an exit that never waits for handler threads past the grace period."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading

from watcher import blocking, service_notify
from watcher.app import load_config
from watcher.errors import ConfigError
from watcher.logs import configure_logging, get_logger
from watcher.worker.loop import Worker


def new_event_loop(choice: str, source: str = "config") -> asyncio.AbstractEventLoop:
    """uvloop's (libuv) when asked, or with ``auto`` when installed: the worker spends about 10 %
    less CPU per message on it (benchmarks/throughput.py); asyncio's own otherwise."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError(["worker.event_loop: uvloop is not installed (pip install uvloop)"], source) from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    configure_logging(config.logging.level, config.logging.format)
    log = get_logger("watcher")
    notifier = service_notify.Notifier.from_environment()
    worker = Worker(config)
    loop = new_event_loop(config.worker.event_loop, args.config)
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        name = signal.Signals(signum).name
        if signals_seen == 1:
            worker.request_stop()
            notifier.stopping(_describe(worker))
            log.info(
                "signal received: draining; send it again to exit at once",
                signal=name,
                grace_seconds=config.worker.shutdown_grace_seconds,
            )
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
        loop.run_until_complete(_serve(worker, notifier))
    except ConfigError as exc:
        log.error("cannot start", problems=exc.problems)
        notifier.status("cannot start: " + "; ".join(exc.problems))
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


async def _serve(worker: Worker, notifier: service_notify.Notifier) -> None:
    notifier.start(worker.started, lambda: _describe(worker))
    try:
        await worker.run()
    finally:
        await notifier.stop()


def _describe(worker: Worker) -> str:
    """The STATUS= systemd shows (``systemctl status``)."""
    if worker.stopping:
        return f"stopping: in flight {worker.in_flight}, processed {worker.processed}"
    if not worker.started.is_set():
        ready, detail = worker.readiness()
        return "starting the handlers" if ready else f"connecting to the queue ({detail})"
    # Messages held, deletes pending included: up to 3 x max_in_flight, so no "of max_in_flight".
    counts = f"in flight {worker.in_flight}, processed {worker.processed}"
    ready, detail = worker.readiness()
    return counts if ready else f"{counts}; not ready: {detail}"


def _exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
