"""The ``runtime: batch`` entrypoint in the job image, on the local Docker engine, against LocalStack's S3: the
worker's staging (watcher.handlers.container.runtimes.batch_staging) and the entrypoint's side of it, without a
Batch service. The end-to-end tests (tests/test_batch_integration.py) run it with curl; here also with python3
alone, and when staging fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.batch_bed import JOB_IMAGE, JOB_IMAGE_SPEC
from tests.support.containers import keys
from tests.support.images import docker_client
from tests.support.rootfs import rootfs_image
from watcher.config.schema import AwsConfig
from watcher.handlers.container.handler import parse
from watcher.handlers.container.runtimes.batch_staging import ENTRYPOINT, JOB_DIR, STAGING_FAILED, Staging
from watcher.handlers.container.workspace import JobDir

pytestmark = pytest.mark.integration
SCRIPT = """echo "working on $(basename "$INPUT_FILE_PATH")"
mkdir -p "$TMP_OUTPUT_DIR/parts"
tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/parts/upper.txt"
echo "to stderr" >&2
exit "${EXIT_WITH:-0}"
"""


@pytest.fixture(scope="module")
def image() -> str:
    return rootfs_image(JOB_IMAGE_SPEC, JOB_IMAGE)


@pytest.fixture
def staging(s3: Any, unique: str) -> Iterator[Staging]:
    bucket = f"stage-{unique}"
    s3.create_bucket(Bucket=bucket)
    options, problems = parse(
        {
            "runtime": "batch",
            "command": "true",
            "job_queue": "q",
            "job_definition": "d",
            "staging": f"s3://{bucket}/scratch",
        }
    )
    assert options is not None, problems
    staging = Staging(AwsConfig(endpoint_url="http://127.0.0.1:4566"), options)
    assert staging.folder("job-0") == "scratch/.watcher/batch/job-0/"
    yield staging
    staging.close()


def prepared(tmp_path: Path, name: str) -> JobDir:
    job = JobDir(tmp_path / name)
    job.create()
    job.write_script(SCRIPT)
    (job.input / "words.txt").write_text("frames and faces\n")
    return job


def run_job(image: str, environment: dict[str, str], prelude: str = "") -> tuple[int, str]:
    """The entrypoint as Batch runs it: ``/bin/sh -c <entrypoint>``, on the host's network (LocalStack)."""
    contract = {
        "INPUT_FILE_PATH": f"{JOB_DIR}/input/words.txt",
        "TMP_INPUT_DIR": f"{JOB_DIR}/input",
        "TMP_OUTPUT_DIR": f"{JOB_DIR}/output",
    }
    container = docker_client().containers.run(
        image,
        ["/bin/sh", "-c", prelude + ENTRYPOINT],
        environment={**contract, **environment},
        network_mode="host",
        detach=True,
    )
    try:
        code = int(container.wait(timeout=60)["StatusCode"])
        return code, container.logs(stdout=True, stderr=True).decode()
    finally:
        container.remove(force=True)


def test_with_python3_alone_the_job_fetches_its_input_and_hands_back_log_and_outputs(
    image: str, staging: Staging, s3: Any, tmp_path: Path
) -> None:
    urls = staging.stage(prepared(tmp_path, "sent"), "job-1")
    code, printed = run_job(image, urls, prelude="rm /usr/bin/curl && ! command -v curl || exit 99\n")  # no curl now
    assert code == 0, printed
    assert "working on words.txt" in printed and "to stderr" in printed  # what CloudWatch would get
    back = JobDir(tmp_path / "back")
    back.create()
    unpacked = staging.fetch_result(back, "job-1")
    assert unpacked is not None and (unpacked.exit_code, unpacked.refused) == (0, {})
    assert (back.output / "parts" / "upper.txt").read_text() == "FRAMES AND FACES\n"
    assert back.log.read_text() == "working on words.txt\nto stderr\n"
    assert staging.remove("job-1")
    assert keys(s3, staging.bucket) == []


def test_a_failing_script_hands_back_its_log_and_exit_code_but_no_outputs(
    image: str, staging: Staging, tmp_path: Path
) -> None:
    urls = staging.stage(prepared(tmp_path, "sent"), "job-2")
    code, _ = run_job(image, {**urls, "EXIT_WITH": "4"})
    assert code == 4
    back = JobDir(tmp_path / "back")
    back.create()
    unpacked = staging.fetch_result(back, "job-2")
    assert unpacked is not None and unpacked.exit_code == 4
    assert list(back.output.iterdir()) == []  # the script wrote one; outputs come back only on success
    assert "working on words.txt" in back.log.read_text()


def test_when_the_input_cannot_be_fetched_the_job_says_why_and_hands_back_nothing(
    image: str, staging: Staging, s3: Any, tmp_path: Path
) -> None:
    urls = staging.stage(prepared(tmp_path, "sent"), "job-3")
    s3.delete_object(Bucket=staging.bucket, Key=f"{staging.folder('job-3')}input")
    code, printed = run_job(image, urls)
    assert code == STAGING_FAILED
    assert "watcher entrypoint: cannot download the input" in printed
    assert "working on" not in printed  # the script never ran
    back = JobDir(tmp_path / "back")
    back.create()
    assert staging.fetch_result(back, "job-3") is None
