"""A real implementation of the AWS Batch API that runs each job's container on the local Docker engine:
moto's server mode (``moto[server,batch]``), installed from PyPI into its own virtualenv under
``$WATCHER_HOME/moto-batch-venv`` on first use (about 40 s; its pins clash with ours), started for the test
session on a free 127.0.0.1 port and stopped after.

What moto's Batch does for real: SubmitJob starts a thread that moves the job SUBMITTED -> RUNNING, runs the
job definition's image with ``docker run`` (the command and environment overrides applied), waits for its exit,
puts stdout/stderr into its CloudWatch Logs backend (group ``/aws/batch/job``, stream
``<job definition>/default/<job id>``) and marks the job SUCCEEDED (exit 0) or FAILED; TerminateJob kills the
container; ListJobs / DescribeJobs / tags work. What it does not: vCPU/memory overrides (recorded, not applied
to the container), retry strategies, compute capacity (a job starts at once), and DescribeJobs leaves out
``container.exitCode`` (watcher takes the exit code from the job's own result). Containers run with
``MOTO_DOCKER_NETWORK_MODE=host``, so a job reaches LocalStack's S3 at 127.0.0.1:4566, as the pre-signed URLs
the worker made say.

The job image, ``watcher-test/batch-job:1``, is Debian minbase with curl and python3 (built from Debian packages
by tests/support/rootfs.py and cached: about 110 s the first time); moto never pulls it, it is present.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.process import free_port
from tests.support.rootfs import RootfsSpec, rootfs_image, watcher_home
from tests.support.tool_venv import tool_venv
from watcher.local import service

MOTO_VERSION = "5.2.5"
JOB_IMAGE = "watcher-test/batch-job:1"
JOB_IMAGE_SPEC = RootfsSpec(name="batch-job", packages=("curl", "python3"))
REGION = "us-east-1"


def moto_server() -> Path:
    """The moto_server executable, installed on first use; raises when PyPI cannot give it."""
    return tool_venv("moto-batch-venv", f"moto[server,batch]=={MOTO_VERSION}", "moto_server")


def client(endpoint: str, service_name: str) -> Any:
    return boto3.client(
        service_name,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@dataclass
class BatchBed:
    endpoint: str
    compute_environment: str  # ARN
    job_definition: str  # name
    timings: dict[str, float] = field(default_factory=dict)

    def batch(self) -> Any:
        return client(self.endpoint, "batch")

    def logs(self) -> Any:
        return client(self.endpoint, "logs")

    def new_queue(self) -> str:
        """A job queue of its own for one test (its jobs are listed and swept apart from the others)."""
        name = f"watcher-test-{uuid.uuid4().hex[:10]}"
        self.batch().create_job_queue(
            jobQueueName=name,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": self.compute_environment}],
        )
        return name

    def jobs(self, queue: str) -> list[dict[str, Any]]:
        """Every job of the queue, described (status, statusReason, tags, container, timestamps)."""
        batch = self.batch()
        ids = [
            summary["jobId"]
            for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
            for summary in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
        ]
        return list(batch.describe_jobs(jobs=ids)["jobs"]) if ids else []

    def running(self, queue: str) -> list[dict[str, Any]]:
        return [job for job in self.jobs(queue) if job["status"] == "RUNNING"]


def job_containers() -> list[Any]:
    """Containers moto started from the job image (it removes each when its job ends)."""
    import docker

    found = docker.from_env().containers.list(all=True, filters={"ancestor": JOB_IMAGE})
    return list(found)


@contextlib.contextmanager
def batch_bed() -> Iterator[BatchBed]:
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        executable = moto_server()
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"the AWS Batch stand-in (moto server) cannot be installed here: {exc}")
    timings["install_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    rootfs_image(JOB_IMAGE_SPEC, JOB_IMAGE)
    timings["image_s"] = round(time.monotonic() - started, 1)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    state = watcher_home() / "moto-batch" / str(port)
    name = "moto-batch"

    def answers() -> bool:
        with contextlib.suppress(Exception):
            client(endpoint, "batch").describe_job_queues()
            return True
        return False

    started = time.monotonic()
    environment = {**_base_environment(), "MOTO_DOCKER_NETWORK_MODE": "host", "MOTO_PORT": str(port)}
    service.start(name, [str(executable), "-H", "127.0.0.1", "-p", str(port)], state, answers, env=environment)
    try:
        role = client(endpoint, "iam").create_role(RoleName="watcher-batch-service", AssumeRolePolicyDocument="{}")
        compute = client(endpoint, "batch").create_compute_environment(
            computeEnvironmentName="watcher-test", type="UNMANAGED", state="ENABLED", serviceRole=role["Role"]["Arn"]
        )
        client(endpoint, "batch").register_job_definition(
            jobDefinitionName="watcher-test-job",
            type="container",
            containerProperties={"image": JOB_IMAGE, "vcpus": 1, "memory": 256, "command": ["true"]},
        )
        timings["start_s"] = round(time.monotonic() - started, 1)
        yield BatchBed(endpoint, compute["computeEnvironmentArn"], "watcher-test-job", timings)
    finally:
        service.stop(name, state)
        for container in job_containers():  # of jobs still running when the server stopped
            with contextlib.suppress(Exception):
                container.remove(force=True)
        shutil.rmtree(state, ignore_errors=True)


def _base_environment() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
