"""``runtime: batch`` without a Batch service: its options, the SubmitJob request it makes (the overrides the
stand-in records but does not apply), and how it reads a job's result tar, which it does not trust."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from watcher.config.schema import AwsConfig
from watcher.errors import PermanentError
from watcher.handlers.container.handler import parse
from watcher.handlers.container.runtimes.base import JobSpec, RuntimeContext
from watcher.handlers.container.runtimes.batch import BatchRuntime
from watcher.handlers.container.runtimes.batch_staging import ENTRYPOINT, console_url, unpack_result
from watcher.handlers.container.workspace import JobDir

BATCH = {
    "runtime": "batch",
    "command": "echo hi",
    "job_queue": "heavy",
    "job_definition": "ffmpeg:3",
    "output": "s3://media/frames/",
}


def problems(**options: Any) -> list[str]:
    return parse({**BATCH, **options})[1]


def runtime(tmp_path: Path, **options: Any) -> BatchRuntime:
    parsed, found = parse({**BATCH, **options})
    assert parsed is not None, found
    context = RuntimeContext("split", tmp_path / "area-1", AwsConfig(region="eu-west-1"))
    return BatchRuntime.create(parsed, context)


# --- options ------------------------------------------------------------------------------------


def test_a_batch_route_needs_a_job_queue_and_a_job_definition_and_no_image() -> None:
    assert problems() == []
    assert problems(job_queue=None, job_definition="") == [
        ".job_queue: required for the batch runtime (a name or an ARN)",
        ".job_definition: required for the batch runtime (a name or an ARN)",
    ]


def test_options_only_docker_uses_are_refused_rather_than_ignored() -> None:
    assert problems(image="busybox", network="bridge", pids_limit=64) == [
        ".image: not used by the batch runtime (the job definition decides)",
        ".network: not used by the batch runtime (the job definition decides)",
        ".pids_limit: not used by the batch runtime (the job definition decides)",
    ]


def test_staging_defaults_to_the_output_and_is_required_without_one() -> None:
    assert problems(output=None) == [".staging: required for the batch runtime when the route has no output"]
    assert problems(output=None, staging="s3://scratch/jobs/") == []
    assert problems(staging="scratch") == [".staging: must be an S3 URI such as s3://bucket/staging/ (got 'scratch')"]


def test_endpoint_poll_interval_and_batchs_reserved_names_are_checked() -> None:
    wrong = {"batch_endpoint_url": "localhost:5000", "logs_endpoint_url": "logs", "poll_max_seconds": 0}
    assert problems(**wrong, environment={"AWS_BATCH_X": "1"}) == [
        ".batch_endpoint_url: must be an http(s) URL",
        ".logs_endpoint_url: must be an http(s) URL",
        ".poll_max_seconds: must be a number of seconds from 1 to 600",
        ".environment.AWS_BATCH_X: names starting with AWS_BATCH are Batch's",
    ]


def test_the_runtimes_own_options_reach_it_and_other_runtimes_refuse_them() -> None:
    parsed, _ = parse({**BATCH, "poll_max_seconds": 5})
    assert parsed is not None
    assert dict(parsed.runtime_options) == {"job_queue": "heavy", "job_definition": "ffmpeg:3", "poll_max_seconds": 5}
    assert ".job_queue: unknown field" in " ".join(parse({"image": "x", "command": "true", "job_queue": "q"})[1])


# --- the SubmitJob request ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "batch_url", "logs_url"),
    [
        ({}, "http://aws.local:4566", "http://aws.local:4566"),  # both fall back to aws.endpoint_url
        ({"batch_endpoint_url": "http://batch.local:5000"}, "http://batch.local:5000", "http://aws.local:4566"),
        (
            {"batch_endpoint_url": "http://batch.local:5000", "logs_endpoint_url": "http://logs.local:5001"},
            "http://batch.local:5000",
            "http://logs.local:5001",
        ),
    ],
)
def test_batch_and_cloudwatch_logs_calls_go_to_their_own_endpoints(
    tmp_path: Path, options: dict[str, str], batch_url: str, logs_url: str
) -> None:
    parsed, found = parse({**BATCH, **options})
    assert parsed is not None, found
    aws = AwsConfig(region="eu-west-1", endpoint_url="http://aws.local:4566")
    batch = BatchRuntime.create(parsed, RuntimeContext("split", tmp_path / "area-1", aws))
    try:  # a client is made without a request
        assert (batch._client("batch").meta.endpoint_url, batch._client("logs").meta.endpoint_url) == (
            batch_url,
            logs_url,
        )
    finally:
        for made in batch._clients.values():
            made.close()


def test_the_job_runs_watchers_entrypoint_with_the_contract_once_and_tagged(tmp_path: Path) -> None:
    batch = runtime(tmp_path, environment={"MODE": "fast"})
    spec = JobSpec(JobDir(tmp_path / "job"), {"MODE": "fast", "REQUEST_ID": "ab" * 16}, None, "ab" * 16)
    request = batch._request("watcher-split-x", spec, {**spec.environment, "WATCHER_INPUT_URL": "https://signed"})
    assert request["jobQueue"] == "heavy" and request["jobDefinition"] == "ffmpeg:3"
    overrides = request["containerOverrides"]
    assert overrides["command"] == ["/bin/sh", "-c", ENTRYPOINT]
    assert overrides["environment"] == [
        {"name": "MODE", "value": "fast"},
        {"name": "REQUEST_ID", "value": "ab" * 16},
        {"name": "WATCHER_INPUT_URL", "value": "https://signed"},
    ]
    assert "resourceRequirements" not in overrides and "timeout" not in request
    assert request["retryStrategy"] == {"attempts": 1}  # retries are the queue's, one attempt per unit
    tags = request["tags"]
    assert (tags["watcher:route"], tags["watcher:request_id"], tags["watcher:area"]) == (
        "split",
        "ab" * 16,
        str(tmp_path / "area-1"),
    )


def test_cpus_and_memory_become_the_jobs_vcpu_and_memory_overrides(tmp_path: Path) -> None:
    batch = runtime(tmp_path, cpus=0.5, memory="1.5g", timeout_seconds=600)
    request = batch._request("n", JobSpec(JobDir(tmp_path), {}, 600.0, "r"), {})
    assert request["containerOverrides"]["resourceRequirements"] == [
        {"type": "VCPU", "value": "0.5"},
        {"type": "MEMORY", "value": "1536"},  # MiB
    ]
    # Batch's own timeout is a backstop a minute later, for a job whose worker died; at least Batch's 60 s.
    assert request["timeout"] == {"attemptDurationSeconds": 660}
    short = batch._request("n", JobSpec(JobDir(tmp_path), {}, 2.5, "r"), {})
    assert short["timeout"] == {"attemptDurationSeconds": 63}


def test_a_request_above_batchs_30_kib_is_a_permanent_failure(tmp_path: Path) -> None:
    batch = runtime(tmp_path)
    with pytest.raises(PermanentError, match="above Batch's 30 KiB"):
        batch._request("n", JobSpec(JobDir(tmp_path), {}, None, "r"), {"EVENT": "x" * 40_000})


def test_the_log_stream_is_linked_to_the_cloudwatch_console() -> None:
    url = console_url("eu-west-1", "/aws/batch/job", "ffmpeg/default/0a1b")
    assert url == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#logsV2:log-groups/log-group/$252Faws$252Fbatch$252Fjob/log-events/ffmpeg$252Fdefault$252F0a1b"
    )


# --- the result tar -----------------------------------------------------------------------------


def result_tar(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return path


def special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.fixture
def job(tmp_path: Path) -> JobDir:
    job = JobDir(tmp_path / "job")
    job.create()
    return job


def test_the_log_exit_code_and_output_files_are_unpacked(job: JobDir, tmp_path: Path) -> None:
    tar = result_tar(
        tmp_path / "r.tar",
        [
            ("meta/exit_code", b"0\n"),
            ("meta/log.txt", b"frame 1\nframe 2\n"),
            special("job/output/", tarfile.DIRTYPE),
            special("job/output/frames", tarfile.DIRTYPE),
            ("job/output/frames/0001.jpg", b"jpeg"),
            ("./job/output/summary.json", b"{}"),
        ],
    )
    unpacked = unpack_result(tar, job)
    assert (unpacked.exit_code, unpacked.refused) == (0, {})
    assert job.log.read_bytes() == b"frame 1\nframe 2\n"
    assert sorted(str(p.relative_to(job.output)) for p in job.output.rglob("*")) == [
        "frames",
        "frames/0001.jpg",
        "summary.json",
    ]


def test_links_special_files_and_escaping_names_are_refused(job: JobDir, tmp_path: Path) -> None:
    tar = result_tar(
        tmp_path / "r.tar",
        [
            ("meta/exit_code", b"0"),
            special("job/output/passwd", tarfile.SYMTYPE, "/etc/passwd"),
            special("job/output/near", tarfile.SYMTYPE, "ok.txt"),
            special("job/output/hard", tarfile.LNKTYPE, "job/output/ok.txt"),
            special("job/output/pipe", tarfile.FIFOTYPE),
            special("job/output/tty", tarfile.CHRTYPE),
            ("job/output/../../escaped.txt", b"out"),
            ("job/output/a/../../../escaped2.txt", b"out"),
            ("/job/output/absolute.txt", b"ignored: not under job/output/"),
            ("elsewhere.txt", b"ignored"),
            ("job/output/ok.txt", b"fine"),
            ("job/output/ok.txt/inside", b"a file is not a folder"),
        ],
    )
    unpacked = unpack_result(tar, job)
    assert unpacked.refused == {"symlink": 2, "hardlink": 1, "special": 2, "bad_name": 3}
    assert [p.name for p in job.output.rglob("*")] == ["ok.txt"]
    assert sorted(p.name for p in tmp_path.rglob("*.txt")) == ["ok.txt"]  # nothing written outside output/


@pytest.mark.parametrize(("text", "code"), [(b"3\n", 3), (b"0", 0), (b"255", 255), (b"256", None), (b"x", None)])
def test_the_exit_code_must_be_a_number_from_0_to_255(job: JobDir, tmp_path: Path, text: bytes, code: int) -> None:
    assert unpack_result(result_tar(tmp_path / "r.tar", [("meta/exit_code", text)]), job).exit_code == code


def test_a_result_without_an_exit_code_says_so(job: JobDir, tmp_path: Path) -> None:
    assert unpack_result(result_tar(tmp_path / "r.tar", [("meta/log.txt", b"hi")]), job).exit_code is None
