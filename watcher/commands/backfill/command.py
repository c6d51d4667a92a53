"""``watcher backfill -c FILE s3://bucket/prefix``: every existing object a route would match, sent to
the queue as the notification S3 would have sent (the normal workers do the work), or run here with
``--direct``. ``--route`` narrows to one route (the message then asks the worker for that route only);
``--since`` / ``--until`` to a LastModified window; ``--rate`` caps objects a second; ``--dry-run``
lists what would be sent; ``--resume`` starts after the last key a stopped backfill finished (Ctrl-C
finishes the batches under way and keeps the checkpoint). Objects already processed are skipped by
the idempotency store unless ``--ignore-idempotency``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from aiobotocore.session import AioSession
from botocore.config import Config as BotoConfig

from watcher.app import App, load_config
from watcher.aws_async import aio_client_kwargs, aio_session
from watcher.commands.backfill.checkpoint import Checkpoint, default_path
from watcher.commands.backfill.enqueue import BATCH, Batch, DirectRunner, QueueSender
from watcher.commands.backfill.events import ATTR_BACKFILL, ExistingObject
from watcher.commands.backfill.listing import existing_objects, is_versioned
from watcher.commands.progress import Progress
from watcher.config.loader import default_state_dir
from watcher.config.schema import Config, RouteConfig
from watcher.dispatch import ATTR_IGNORE_IDEMPOTENCY, ATTR_ROUTES, Directives
from watcher.logs import configure_logging
from watcher.routing import match_routes
from watcher.sqs import describe_queue

Sink = QueueSender | DirectRunner


def cmd_backfill(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    bucket, _, prefix = args.source.removeprefix("s3://").partition("/")
    if not args.source.startswith("s3://") or not bucket:
        print(f"watcher backfill: {args.source!r} is not an S3 URI such as s3://bucket/prefix/", file=sys.stderr)
        return 2
    routes = [r for r in config.routes if args.route in (None, r.name)]
    if not routes:
        print(f"watcher backfill: no route named {args.route!r}", file=sys.stderr)
        return 2
    configure_logging("warning", config.logging.format)  # --direct: only problems, besides the progress
    return asyncio.run(Backfill(args, config, bucket, prefix, routes).run())


def _date(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Backfill:
    def __init__(self, args: argparse.Namespace, config: Config, bucket: str, prefix: str, routes: list[RouteConfig]):
        self.args, self.config, self.bucket, self.prefix, self.routes = args, config, bucket, prefix, routes
        names = [r.name for r in routes]
        path = args.checkpoint or default_path(default_state_dir(os.environ), args.source, names)
        self.checkpoint = Checkpoint(path, args.source, names)
        self.counter = "run" if args.direct else "sent"
        self.progress = Progress(f"backfill of {args.source}", ("listed", "matched", self.counter, "failed"))
        self.stop = asyncio.Event()
        self.versioned = False

    async def run(self) -> int:
        start_after = self.checkpoint.resume() if self.args.resume else None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.stop.set)
        session = aio_session(self.config.aws)
        sink: Sink | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                kwargs = aio_client_kwargs(self.config.aws, pool=32)
                # Requests built here, always the same shapes: no validation against the model.
                kwargs["config"] = kwargs["config"].merge(BotoConfig(parameter_validation=False))
                s3 = await stack.enter_async_context(session.create_client("s3", **kwargs))
                if not self.args.dry_run:
                    sink = await self._sink(stack, session, kwargs)
                self.versioned = await is_versioned(s3, self.bucket)
                await self._feed(s3, sink, start_after)
                if sink is not None:
                    await sink.close()
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        return self._summary(sink)

    async def _sink(self, stack: contextlib.AsyncExitStack, session: AioSession, kwargs: dict[str, Any]) -> Sink:
        args, config = self.args, self.config
        if args.direct:
            app = App(config)
            await app.start()
            stack.push_async_callback(app.close)
            if app.idempotency is not None:  # long units keep their claims
                stack.callback(asyncio.create_task(app.idempotency.keep_leases()).cancel)
            directives = Directives(args.ignore_idempotency, frozenset({args.route}) if args.route else None)
            concurrency = config.queue.max_in_flight
            return DirectRunner(
                app, config.aws.region, directives, self._finished, concurrency=concurrency, rate=args.rate
            )
        sqs = await stack.enter_async_context(session.create_client("sqs", **kwargs))
        queue_url = args.to_queue or (await describe_queue(sqs, config.queue)).url
        return QueueSender(sqs, queue_url, config.aws.region, self._attributes(), self._finished, rate=args.rate)

    def _attributes(self) -> dict[str, dict[str, str]]:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        attributes = {ATTR_BACKFILL: {"DataType": "String", "StringValue": started}}
        if self.args.route:
            attributes[ATTR_ROUTES] = {"DataType": "String", "StringValue": self.args.route}
        if self.args.ignore_idempotency:
            attributes[ATTR_IGNORE_IDEMPOTENCY] = {"DataType": "String", "StringValue": "true"}
        return attributes

    async def _feed(self, s3: Any, sink: Sink | None, start_after: str | None) -> None:
        """List, match and hand over batches of ten until the listing ends or Ctrl-C."""
        batch: Batch = []
        index = 0
        pages = existing_objects(
            s3,
            self.bucket,
            self.prefix,
            versioned=self.versioned,
            start_after=start_after,
            since=_date(self.args.since),
            until=_date(self.args.until),
        )
        async for listed, objects in pages:
            self.progress.advance(listed=listed)
            for item in filter(self._matches, objects):
                if sink is None:
                    print(f"would {'run' if self.args.direct else 'send'} {self._describe(item)}")
                    continue
                batch.append(item)
                if len(batch) == BATCH:
                    await sink.put(index, batch)
                    index, batch = index + 1, []
            if self.stop.is_set():
                break
        if batch and sink is not None:
            await sink.put(index, batch)

    def _matches(self, item: ExistingObject) -> bool:
        wanted, _ = match_routes(item.record(), self.routes)
        if wanted:
            self.progress.advance(matched=1)
        return bool(wanted)

    def _describe(self, item: ExistingObject) -> str:
        wanted, _ = match_routes(item.record(), self.routes)
        return f"s3://{self.bucket}/{item.key} -> {', '.join(r.name for r in wanted)}"

    def _finished(self, index: int, batch: Batch, failed: int) -> None:
        self.progress.advance(**{self.counter: len(batch) - failed, "failed": failed})
        if not failed:  # a failed batch holds the checkpoint back: --resume sends it again
            self.checkpoint.finished(index, batch[-1].key, len(batch))

    def _summary(self, sink: Sink | None) -> int:
        lines = ["versioned bucket: events name each object's version" if self.versioned else "unversioned bucket"]
        failed, stopped = self.progress.counts["failed"], self.stop.is_set()
        if sink is None:
            lines.append("dry run: nothing sent")
        elif stopped or failed:
            self.checkpoint.write()
            lines.append(f"stopped before the end; {self.checkpoint.path} says where: run again with --resume")
        else:
            self.checkpoint.remove()
        lines += [f"error: {e}" for e in (sink.errors if sink is not None else [])]
        self.progress.close(lines)
        return 1 if failed else (130 if stopped else 0)
