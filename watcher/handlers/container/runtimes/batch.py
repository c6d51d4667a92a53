"""The ``batch`` runtime: each job is an AWS Batch job, for work too heavy or too long for the host.

Options: ``job_queue`` and ``job_definition`` (names or ARNs; the job definition names the image),
``staging`` (an S3 URI; default: the first output), ``batch_endpoint_url`` and ``logs_endpoint_url``
(Batch's and CloudWatch Logs' endpoints, each its own: default ``aws.endpoint_url``), ``poll_max_seconds``;
the common ``cpus`` and ``memory`` become the job's VCPU and MEMORY overrides.

A job: the script and input are staged in S3 by the worker (watcher.handlers.container.runtimes.
batch_staging); SubmitJob runs watcher's entrypoint (ENTRYPOINT there) as the job's command, with
the contract's environment and pre-signed URLs, one attempt (retries are the queue's); DescribeJobs
is polled with backoff while the heartbeat keeps the message; ``timeout_seconds`` counts from
RUNNING, then TerminateJob; a cancelled unit (shutdown, route timeout) terminates its job. The
result comes back through S3 and the handler applies its usual output rules. Jobs are tagged with
this host, mount namespace and work area, so a worker starting after a crash terminates the jobs of
its dead predecessors on this host (jobs of other hosts are left to Batch's own timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from watcher.aws import client
from watcher.blocking import run_blocking, run_control, shielded
from watcher.errors import PermanentError, RetryableError, error_code
from watcher.handlers.container.contract import JobPaths
from watcher.handlers.container.options import ContainerOptions, parse_s3_uri
from watcher.handlers.container.runtimes.base import JobResult, JobSpec, RuntimeContext
from watcher.handlers.container.runtimes.batch_staging import (
    ENTRYPOINT,
    JOB_DIR,
    Staging,
    console_url,
    save_log_stream,
)
from watcher.handlers.container.workspace import JobDir, mount_namespace
from watcher.logs import bind_log_fields, get_logger

_log = get_logger("watcher.handlers.container")
FIELDS = ("job_queue", "job_definition", "staging", "batch_endpoint_url", "logs_endpoint_url", "poll_max_seconds")
_DOCKER_ONLY = ("image", "network", "user", "pull", "registry_auth", "pids_limit")
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
TAG_MANAGED, TAG_HOST, TAG_NAMESPACE, TAG_AREA = "watcher:managed", "watcher:host", "watcher:mnt", "watcher:area"
TAG_ROUTE, TAG_REQUEST_ID = "watcher:route", "watcher:request_id"
MAX_SUBMIT_BYTES = 30 << 10  # Batch refuses a SubmitJob payload above 30 KiB
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_FIRST_POLL_SECONDS = 1.0
_POLL_FAILURES = 5  # DescribeJobs failures in a row (each after botocore's own retries) before giving up
_TERMINATE_WAIT_SECONDS = 180.0  # Batch stops a task with SIGTERM, then SIGKILL 30 s later


def validate(options: Mapping[str, Any]) -> list[str]:
    problems = []
    for name in ("job_queue", "job_definition"):
        value = options.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f".{name}: required for the batch runtime (a name or an ARN)")
    problems += [
        f".{name}: not used by the batch runtime (the job definition decides)"
        for name in _DOCKER_ONLY
        if name in options
    ]
    staging = options.get("staging")
    if staging is not None and parse_s3_uri(staging) is None:
        problems.append(f".staging: must be an S3 URI such as s3://bucket/staging/ (got {staging!r})")
    elif staging is None and not options.get("output"):
        problems.append(".staging: required for the batch runtime when the route has no output")
    for name in ("batch_endpoint_url", "logs_endpoint_url"):
        endpoint = options.get(name)
        if endpoint is not None and not (isinstance(endpoint, str) and re.match(r"^https?://[^/]", endpoint)):
            problems.append(f".{name}: must be an http(s) URL")
    poll = options.get("poll_max_seconds", 30)
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not 1 <= poll <= 600:
        problems.append(".poll_max_seconds: must be a number of seconds from 1 to 600")
    environment = options.get("environment")
    if isinstance(environment, dict):
        problems += [
            f".environment.{k}: names starting with AWS_BATCH are Batch's"
            for k in environment
            if str(k).startswith("AWS_BATCH")
        ]
    return problems


class BatchRuntime:
    name: ClassVar[str] = "batch"
    option_fields: ClassVar[tuple[str, ...]] = FIELDS

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[str]:
        return validate(options)

    @classmethod
    def create(cls, options: ContainerOptions, context: RuntimeContext) -> BatchRuntime:
        return cls(options, context)

    def __init__(self, options: ContainerOptions, context: RuntimeContext) -> None:
        settings = options.runtime_options
        self._options = options
        self._route, self._area = context.route, context.area
        self._queue, self._definition = str(settings["job_queue"]), str(settings["job_definition"])
        self._poll_max = float(settings.get("poll_max_seconds", 30))
        self._aws = context.aws
        self._endpoints = {  # a Batch VPC or FIPS endpoint does not serve CloudWatch Logs
            "batch": settings.get("batch_endpoint_url") or context.aws.endpoint_url,
            "logs": settings.get("logs_endpoint_url") or context.aws.endpoint_url,
        }
        self._staging = Staging(context.aws, options)
        self._owner = {
            TAG_MANAGED: "true",
            TAG_HOST: socket.gethostname(),
            TAG_NAMESPACE: mount_namespace(),
            TAG_ROUTE: self._route[:256],  # another route stages elsewhere: its jobs are not ours to sweep
            TAG_AREA: str(context.area),
        }
        self._clients: dict[str, Any] = {}
        self._checked = False

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            aws = dataclasses.replace(self._aws, endpoint_url=self._endpoints[service])
            self._clients[service] = client(aws, service, pool=32)
        return self._clients[service]

    def paths(self, job: JobDir) -> JobPaths:
        return JobPaths(f"{JOB_DIR}/input", f"{JOB_DIR}/output", f"{JOB_DIR}/script.sh", JOB_DIR)

    async def prepare(self) -> None:
        """Check once that the job queue exists and takes jobs."""
        if self._checked:
            return
        queues = await run_control(self._call, "describe the job queue", "describe_job_queues", jobQueues=[self._queue])
        found = queues.get("jobQueues", [])
        if not found:
            raise PermanentError(f"batch job queue {self._queue} does not exist")
        if found[0].get("state") != "ENABLED":
            raise RetryableError(f"batch job queue {self._queue} is {found[0].get('state')}")
        self._checked = True

    def _call(self, doing: str, operation: str, **arguments: Any) -> Any:
        """One Batch call, its failures as ours: refused requests are permanent, the rest retryable."""
        try:
            return getattr(self._client("batch"), operation)(**arguments)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
            if 400 <= status < 500 and status != 429 and "Throttl" not in (error_code(exc) or ""):
                raise PermanentError(f"batch refused to {doing}: {exc}") from None
            raise RetryableError(f"batch could not {doing}: {exc}") from None
        except BotoCoreError as exc:
            raise RetryableError(f"batch could not {doing}: {exc}") from None

    # --- one job --------------------------------------------------------------------------------

    async def run(self, spec: JobSpec) -> JobResult:
        name = _NAME_UNSAFE.sub("-", f"watcher-{self._route}-{spec.job.root.name}-{secrets.token_hex(3)}")[:128]
        submitting: asyncio.Future[str] | None = None
        ended = False
        try:
            urls = await run_blocking(self._staging.stage, spec.job, name)
            request = self._request(name, spec, {**spec.environment, **urls})
            # Shielded: a cancellation while Batch is answering still learns the job's id, to end it.
            submitting = asyncio.ensure_future(run_control(self._submit, request))
            job_id = await asyncio.shield(submitting)
            bind_log_fields(batch_job_id=job_id)
            job, timed_out = await self._follow(job_id, spec)
            ended = True
            return await self._result(job, name, spec, timed_out)
        finally:
            await shielded(self._clean_up(submitting, ended, name))

    def _request(self, name: str, spec: JobSpec, environment: Mapping[str, str]) -> dict[str, Any]:
        options = self._options
        overrides: dict[str, Any] = {
            "command": ["/bin/sh", "-c", ENTRYPOINT],
            "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        }
        resources = []
        if options.cpus is not None:
            resources.append({"type": "VCPU", "value": f"{options.cpus:g}"})
        if options.memory is not None:
            resources.append({"type": "MEMORY", "value": str(math.ceil(options.memory / (1 << 20)))})
        if resources:
            overrides["resourceRequirements"] = resources
        request: dict[str, Any] = {
            "jobName": name,
            "jobQueue": self._queue,
            "jobDefinition": self._definition,
            "containerOverrides": overrides,
            "retryStrategy": {"attempts": 1},  # one unit, one attempt: retries are the queue's
            "tags": {**self._owner, TAG_REQUEST_ID: spec.request_id},
        }
        if spec.timeout_seconds is not None:  # a backstop for a job whose worker is gone; ours comes first
            request["timeout"] = {"attemptDurationSeconds": max(60, math.ceil(spec.timeout_seconds) + 60)}
        size = len(json.dumps(request))
        if size > MAX_SUBMIT_BYTES:
            raise PermanentError(f"the batch job request is {size} bytes, above Batch's 30 KiB (environment, EVENT)")
        return request

    def _submit(self, request: dict[str, Any]) -> str:
        return str(self._call("submit the job", "submit_job", **request)["jobId"])

    def _describe(self, job_id: str) -> dict[str, Any]:
        jobs = self._call("describe the job", "describe_jobs", jobs=[job_id]).get("jobs", [])
        if not jobs:
            raise RetryableError(f"batch job {job_id} is not known to Batch any more")
        return dict(jobs[0])

    def _terminate(self, job_id: str, reason: str) -> None:
        self._call("terminate the job", "terminate_job", jobId=job_id, reason=reason)

    async def _follow(self, job_id: str, spec: JobSpec) -> tuple[dict[str, Any], bool]:
        """Poll until the job ends (1 s, then 1.5 times longer each time, up to ``poll_max_seconds``);
        terminate it when it has been RUNNING for longer than its timeout. The job, and whether it
        timed out."""
        loop = asyncio.get_running_loop()
        interval, deadline, timed_out, failures = _FIRST_POLL_SECONDS, None, False, 0
        while True:
            try:
                job = await run_control(self._describe, job_id)
                failures = 0
            except RetryableError:  # a passing API failure must not cost a long job: try again later
                failures += 1
                if failures >= _POLL_FAILURES:
                    raise
                job = {"status": "UNKNOWN"}
            if job["status"] in ("SUCCEEDED", "FAILED"):
                break
            if deadline is None and spec.timeout_seconds is not None and job["status"] == "RUNNING":
                deadline = loop.time() + spec.timeout_seconds
            if deadline is not None and loop.time() >= deadline:
                timed_out = True
                await run_control(self._terminate, job_id, f"watcher: timed out after {spec.timeout_seconds:g}s")
                job = await self._wait_ended(job_id)
                break
            pause = interval if deadline is None else max(0.0, min(interval, deadline - loop.time()))
            await asyncio.sleep(pause)
            interval = min(interval * 1.5, self._poll_max)
        return job, timed_out

    async def _wait_ended(self, job_id: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _TERMINATE_WAIT_SECONDS
        while True:
            job = await run_control(self._describe, job_id)
            if job["status"] in ("SUCCEEDED", "FAILED") or loop.time() > give_up:
                return job
            await asyncio.sleep(min(2.0, self._poll_max))

    async def _result(self, job: dict[str, Any], name: str, spec: JobSpec, timed_out: bool) -> JobResult:
        container = job.get("container") or {}
        attempt = (job.get("attempts") or [{}])[-1].get("container") or {}
        stream = container.get("logStreamName") or attempt.get("logStreamName")
        group = ((container.get("logConfiguration") or {}).get("options") or {}).get("awslogs-group", "/aws/batch/job")
        if stream:
            bind_log_fields(batch_log_stream=stream, batch_log_url=console_url(self._aws.region, group, stream))
        started, stopped = job.get("startedAt"), job.get("stoppedAt")
        seconds = (stopped - started) / 1000 if isinstance(started, int) and isinstance(stopped, int) else 0.0
        unpacked = await run_blocking(self._staging.fetch_result, spec.job, name)
        if unpacked is not None and unpacked.refused:
            _log.warning("outputs not uploaded", skipped=unpacked.refused, examples=[], where="batch result")
        if unpacked is None and stream:  # killed, or staging failed: what the job printed, from CloudWatch
            await run_blocking(save_log_stream, self._client("logs"), group, stream, spec.job.log)
        if timed_out:
            return JobResult(None, seconds, timed_out=True)
        if unpacked is not None and unpacked.exit_code is not None:
            return JobResult(unpacked.exit_code, seconds)
        reason = " ".join(
            str(r) for r in (job.get("statusReason"), container.get("reason"), attempt.get("reason")) if r
        )
        code = container.get("exitCode", attempt.get("exitCode"))
        if "OutOfMemory" in reason:
            return JobResult(code if isinstance(code, int) else 137, seconds, oom_killed=True)
        raise RetryableError(
            f"batch job {job['jobId']} ended {job['status']} (exit code {code}) without handing back its result"
            + (f": {reason}" if reason else "")
            + (f"; its log: {group} {stream}" if stream else "")
        )

    async def _clean_up(self, submitting: asyncio.Future[str] | None, ended: bool, name: str) -> None:
        """Terminate a job that has not ended (the unit was cancelled or failed), then delete what
        was staged for it."""
        job_id = None
        if submitting is not None:
            with contextlib.suppress(Exception):
                job_id = await submitting  # answered or refused: either way Batch is done with it
        if job_id is not None and not ended:
            try:
                await run_control(self._terminate, job_id, "watcher: the unit was cancelled (shutdown or timeout)")
                _log.info("batch job terminated", batch_job_id=job_id)
            except (RetryableError, PermanentError) as exc:
                _log.warning("cannot terminate the batch job", batch_job_id=job_id, error=str(exc))
        if not await run_blocking(self._staging.remove, name):
            _log.warning("cannot remove the staged files of a batch job", folder=self._staging.folder(name))

    # --- leftovers ------------------------------------------------------------------------------

    async def sweep(self, is_abandoned: Callable[[Path], bool]) -> int:
        try:
            return await run_control(self._sweep, is_abandoned)
        except (RetryableError, PermanentError) as exc:
            _log.warning("cannot look for batch jobs left by a previous run", error=str(exc))
            return 0

    def _sweep(self, is_abandoned: Callable[[Path], bool]) -> int:
        """Terminate the active jobs of this queue that a dead worker of this host, this mount
        namespace and this work_dir submitted (its area's lock is free)."""
        ids = []
        for status in ACTIVE:
            token: dict[str, str] = {}
            while True:
                page = self._call("list jobs", "list_jobs", jobQueue=self._queue, jobStatus=status, **token)
                ids += [j["jobId"] for j in page.get("jobSummaryList", []) if j["jobName"].startswith("watcher-")]
                if not page.get("nextToken"):
                    break
                token = {"nextToken": page["nextToken"]}
        terminated = 0
        for start in range(0, len(ids), 100):
            for job in self._call("describe jobs", "describe_jobs", jobs=ids[start : start + 100]).get("jobs", []):
                tags = job.get("tags") or {}
                area = Path(tags.get(TAG_AREA, "/"))
                mine = all(tags.get(k) == v for k, v in self._owner.items() if k != TAG_AREA)
                if mine and area.parent == self._area.parent and area != self._area and is_abandoned(area):
                    self._terminate(job["jobId"], "watcher: the worker that submitted it is gone")
                    self._staging.remove(job["jobName"])
                    terminated += 1
        return terminated

    async def close(self) -> None:
        for service in list(self._clients):
            self._clients.pop(service).close()
        self._staging.close()
