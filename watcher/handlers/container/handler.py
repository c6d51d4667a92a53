"""The ``container`` handler: the SCAR / OSCAR programming model.

For each unit of work: a private job directory with ``input/`` and ``output/``; the object streamed
to ``input/<sanitised file name>``; the route's script run with ``/bin/sh`` by the runtime (a
locked-down Docker container, or a host process) with the SCAR / OSCAR environment; every safe
regular file under ``output/`` uploaded to ``<output>/<REQUEST_ID>/<relative path>`` (uploads.py:
markers such as ``_SUCCESS`` last), and the whole log to ``<output>/<REQUEST_ID>/.watcher/log.txt``;
then the container and the directory removed, whatever happened.

Exit 0 succeeds. Another exit code is retryable unless listed in ``permanent_exit_codes``. A
timeout kills the job (retryable); an OOM kill is reported as such. Outputs are uploaded only on
success, so a downstream route never sees half a result; the log is uploaded either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from watcher.blocking import run_blocking, shielded
from watcher.config.schema import RouteConfig
from watcher.errors import PermanentError, RetryableError
from watcher.handlers.base import HandlerContext, HandlerDefaults, OutputLocation
from watcher.handlers.container.contract import contract_environment
from watcher.handlers.container.options import ContainerOptions, OutputTarget, parse_options
from watcher.handlers.container.runtimes import RUNTIMES, runtime_class
from watcher.handlers.container.runtimes.base import JobResult, JobSpec, Runtime, RuntimeContext
from watcher.handlers.container.transfer import S3Transfer
from watcher.handlers.container.uploads import OutputUploader
from watcher.handlers.container.workspace import JobDir, WorkArea, is_abandoned, safe_file_name
from watcher.logs import bind_log_fields, get_logger, mask_secrets
from watcher.records import JOB_LOG_FOLDER
from watcher.routing import Unit

_log = get_logger("watcher.handlers.container")
_REASON_TAIL = 300  # characters of the job's output quoted in a failure reason (the DLQ attribute)


def parse(options: Mapping[str, Any]) -> tuple[ContainerOptions | None, list[str]]:
    """The options as ``ContainerOptions``, or None with every problem: the common options, and those
    of the runtime the route chose (which only that runtime knows)."""
    chosen = options.get("runtime", "docker")
    runtime = runtime_class(chosen) if isinstance(chosen, str) and chosen in RUNTIMES else None
    if runtime is None:
        return parse_options(options, runtimes=tuple(RUNTIMES))
    return parse_options(
        options,
        runtimes=tuple(RUNTIMES),
        runtime_fields=runtime.option_fields,
        runtime_problems=tuple(runtime.validate(options)),
    )


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ContainerHandler(HandlerDefaults):
    type_name: ClassVar[str] = "container"
    reads_objects: ClassVar[bool] = True  # the input is downloaded

    def __init__(self, route: RouteConfig, options: ContainerOptions, context: HandlerContext) -> None:
        self._route = route
        self._options = options
        self._metrics = context.metrics
        self._area = WorkArea(options.work_dir)
        self._runtime: Runtime = runtime_class(options.runtime).create(
            options, RuntimeContext(route.name, self._area.path, context.aws)
        )
        self._transfer = S3Transfer(context.aws)
        self._uploader = OutputUploader(route.name, options, self._transfer, context.metrics)
        self._started: asyncio.Task[None] | None = None

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[str]:
        return parse(options)[1]

    @classmethod
    def create(cls, route: RouteConfig, options: Mapping[str, Any], context: HandlerContext) -> ContainerHandler:
        parsed, problems = parse(options)
        if parsed is None:
            raise ValueError(f"invalid container options: {problems}")
        return cls(route, parsed, context)

    @classmethod
    def output_locations(cls, options: Mapping[str, Any]) -> list[OutputLocation]:
        """Where this route's jobs write (watcher.route_graph checks that no route feeds itself)."""
        parsed, _ = parse(options)
        if parsed is None:
            return []
        return [
            OutputLocation(
                target.bucket,
                target.folder("", False),
                target.suffix,
                target.uri,
                request_id_folder=parsed.request_id_folder,
                path_prefix=target.prefix,
            )
            for target in parsed.outputs
        ]

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open this handler's work area and remove what workers that died left behind. Called by
        the worker at start; the first unit calls it too when nobody did."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        try:
            await asyncio.shield(self._started)
        except Exception:
            self._started = None  # a failed start (work dir not writable) is tried again next time
            raise

    async def _start(self) -> None:
        await run_blocking(self._area.open)
        areas = await run_blocking(self._area.sweep_stale)
        containers = await self._runtime.sweep(is_abandoned)
        if areas:
            self._metrics.container_leftovers.labels("work_dir").inc(len(areas))
        if containers:  # containers (docker) or processes (process) of dead workers
            self._metrics.container_leftovers.labels(self._runtime.name).inc(containers)
        if areas or containers:
            _log.warning(
                "removed what a previous run left behind",
                route=self._route.name,
                work_dirs=len(areas),
                containers=containers,
            )

    async def close(self) -> None:
        await self._runtime.close()
        if self._started is not None:
            await run_blocking(self._area.close)

    # --- one unit -------------------------------------------------------------------------------

    async def handle(self, unit: Unit) -> None:
        await self.start()
        request_id = unit.request_id
        if not _is_utf8(unit.record.key):  # S3 keys are UTF-8: this message was made by hand
            raise PermanentError(f"the key is not valid UTF-8: {unit.record.key!r}")
        job = self._area.plan_job(request_id)  # known before it exists, so always removable
        try:
            await run_blocking(job.create)
            await self._run(unit, job, request_id)
        finally:
            if not await shielded(run_blocking(job.remove)):
                self._metrics.errors.labels("cleanup").inc()
                _log.warning("cannot remove the job folder; the next start removes it", path=str(job.root))

    async def _run(self, unit: Unit, job: JobDir, request_id: str) -> None:
        options, record, route = self._options, unit.record, self._route.name
        # Fields of the unit's summary line: the dispatcher logs it in this same task.
        bind_log_fields(request_id=request_id, runtime=self._runtime.name)
        try:
            await self._runtime.prepare()
            await run_blocking(job.write_script, options.script)
            input_name = safe_file_name(record.key)
            clock = time.perf_counter()
            size = await self._transfer.download(record, job.input / input_name)
            self._metrics.container_bytes.labels(route, "download").inc(size)
            download_ms = _ms_since(clock)
            paths = self._runtime.paths(job)
            environment = {**options.environment, **contract_environment(unit, paths, input_name)}
            result = await self._runtime.run(JobSpec(job, environment, options.timeout_seconds, request_id))
        except (RetryableError, PermanentError):
            self._metrics.container_jobs.labels(route, self._runtime.name, "error").inc()
            raise
        tail = mask_secrets(await run_blocking(job.log_tail, options.log_tail_chars))
        bind_log_fields(
            exit_code=result.exit_code,
            download_ms=download_ms,
            script_ms=round(result.script_seconds * 1000, 1),
            output_tail=tail,
        )
        failure = self._failure(result, tail)
        self._metrics.container_jobs.labels(route, self._runtime.name, _result_label(result)).inc()
        if failure is not None:
            await self._upload_log(job, request_id, must_succeed=False)
            raise failure
        clock = time.perf_counter()
        plan = await self._uploader.plan(job, request_id)
        metadata = {"watcher-request-id": request_id, "watcher-route": route, "watcher-source": unit.record.uri}
        uploaded = await self._uploader.upload(plan.files, job, metadata)
        # The log too before the markers (upload_last): a marker is the last thing a job writes.
        await self._upload_log(job, request_id, must_succeed=True)
        uploaded += await self._uploader.upload(plan.markers, job, metadata)
        bind_log_fields(outputs=uploaded, upload_ms=_ms_since(clock))

    def _failure(self, result: JobResult, tail: str) -> Exception | None:
        options = self._options
        ending = f"; output ends with: {tail[-_REASON_TAIL:]!r}" if tail else ""
        if result.timed_out:
            return RetryableError(f"timed out after {options.timeout_seconds:g}s: the job was killed{ending}")
        if result.exit_code == 0:
            # Docker also flags OOM when only a child process was killed and the script went on:
            # the script's exit code decides; the summary line says so.
            if result.oom_killed:
                bind_log_fields(oom_killed=True)
            return None
        code = result.exit_code
        permanent = code in options.permanent_exit_codes
        if result.oom_killed:
            what = f"killed: out of memory (memory limit {options.memory} bytes, exit code {code})"
        else:
            what = f"script exited with code {code}" + (" (listed in permanent_exit_codes)" if permanent else "")
        return (PermanentError if permanent else RetryableError)(what + ending)

    # --- uploads --------------------------------------------------------------------------------

    async def _upload_log(self, job: JobDir, request_id: str, must_succeed: bool) -> None:
        """The job's whole output next to its results; when the job failed, a failed upload only
        costs the log, not a second failure reason."""
        if not self._options.outputs or not job.log.exists():
            return
        metadata = {"watcher-request-id": request_id, "watcher-route": self._route.name}
        for target in self._options.outputs:
            key = log_key(target, request_id, self._options.request_id_folder)
            try:
                with open(job.log, "rb") as source:  # noqa: ASYNC230  (a local file, read by the upload thread)
                    await self._transfer.upload(source, target.bucket, key, metadata)
            except (RetryableError, PermanentError) as exc:
                if must_succeed:
                    raise
                _log.warning("cannot upload the job log", key=key, error=str(exc))


def log_key(target: OutputTarget, request_id: str, request_id_folder: bool) -> str:
    """``<output>/<REQUEST_ID>/.watcher/log.txt``; without the REQUEST_ID folder, outputs of every
    job share one folder, so the log goes to ``<output>/.watcher/<REQUEST_ID>/log.txt``."""
    if request_id_folder:
        return f"{target.folder(request_id, True)}{JOB_LOG_FOLDER}/log.txt"
    return f"{target.folder(request_id, False)}{JOB_LOG_FOLDER}/{request_id}/log.txt"


def _result_label(result: JobResult) -> str:
    if result.timed_out:
        return "timeout"
    if result.exit_code == 0:
        return "ok"
    return "oom" if result.oom_killed else "exit_code"


def _ms_since(clock: float) -> float:
    return round((time.perf_counter() - clock) * 1000, 1)
