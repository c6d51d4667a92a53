"""A successful job's outputs to S3: every file under ``output/`` that an output target wants, four at
a time, in two phases. The files first; then, once every one of them is in (and the caller has put
the job's log next to them), the markers named in ``upload_last`` (``_SUCCESS`` by default): a route
triggered by a marker finds every file it vouches for, and a failed upload means no marker at all.

The first failed upload fails the phase (the unit is retried and writes the same keys again): uploads
not started yet are skipped, those under way are waited for, never abandoned in their threads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass

from watcher.blocking import run_blocking
from watcher.handlers.container.options import ContainerOptions
from watcher.handlers.container.outputs import OutputFile, collect_outputs, open_output
from watcher.handlers.container.transfer import S3Transfer
from watcher.handlers.container.workspace import JobDir
from watcher.logs import get_logger
from watcher.metrics import Metrics

_log = get_logger("watcher.handlers.container")
_UPLOADS_AT_ONCE = 4
_SKIPPED_EXAMPLES = 10  # paths named in the "outputs not uploaded" line


@dataclass(frozen=True, slots=True)
class Upload:
    output: OutputFile
    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class OutputPlan:
    files: list[Upload]
    markers: list[Upload]  # upload_last: after every file


class OutputUploader:
    def __init__(self, route: str, options: ContainerOptions, transfer: S3Transfer, metrics: Metrics) -> None:
        self._route = route
        self._options = options
        self._transfer = transfer
        self._metrics = metrics

    async def plan(self, job: JobDir, request_id: str) -> OutputPlan:
        """What goes where; the entries of ``output/`` that cannot go anywhere are counted and logged."""
        files, skipped = await run_blocking(collect_outputs, job.output)
        if skipped:  # one line, however many: a script may leave a million of them
            reasons = Counter(entry.reason for entry in skipped)
            for reason, count in reasons.items():
                self._metrics.container_outputs_skipped.labels(self._route, reason).inc(count)
            examples = [f"{entry.relative} ({entry.reason})" for entry in skipped[:_SKIPPED_EXAMPLES]]
            _log.warning("outputs not uploaded", skipped=dict(reasons), examples=examples)
        options = self._options
        uploads = [
            Upload(output, target.bucket, target.folder(request_id, options.request_id_folder) + output.relative)
            for target in options.outputs
            for output in files
            if target.wants(output.relative)
        ]
        return OutputPlan(
            files=[u for u in uploads if u.output.name not in options.upload_last],
            markers=[u for u in uploads if u.output.name in options.upload_last],
        )

    async def upload(self, uploads: list[Upload], job: JobDir, metadata: dict[str, str]) -> int:
        """Upload one phase; how many files went. Raises the first failure once nothing is under way."""
        gate = asyncio.Semaphore(_UPLOADS_AT_ONCE)
        failed = asyncio.Event()

        async def one(item: Upload) -> bool:
            async with gate:
                if failed.is_set():  # the phase failed already: the retry uploads this one
                    return False
                try:
                    return await self._one(item, job, metadata)
                except BaseException:
                    failed.set()
                    raise

        results = await asyncio.gather(*(one(item) for item in uploads), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(results)  # type: ignore[arg-type]  # only bools are left

    async def _one(self, item: Upload, job: JobDir, metadata: dict[str, str]) -> bool:
        route = self._route
        with contextlib.ExitStack() as stack:
            try:
                source = stack.enter_context(open_output(job.output, item.output))
            except OSError as exc:  # swapped for a link or another file since the walk
                self._metrics.container_outputs_skipped.labels(route, "changed").inc()
                examples = [item.output.relative]
                _log.warning("outputs not uploaded", skipped={"changed": 1}, examples=examples, error=str(exc))
                return False
            await self._transfer.upload(source, item.bucket, item.key, metadata)
        self._metrics.container_bytes.labels(route, "upload").inc(item.output.size)
        self._metrics.container_outputs.labels(route).inc()
        return True
