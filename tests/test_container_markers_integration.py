"""A job's marker (``upload_last``, ``_SUCCESS`` unless configured otherwise) reaches S3 only after
every other file of the job, its log included: whoever the marker triggers finds the files it vouches for, and when one
of them cannot be written the marker is never written at all.

A real worker runs the job as a host process (the upload order is the handler's, whatever the
runtime); a second route, triggered by the marker through the bucket's real notification, lists the
marker's folder the moment its event arrives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.containers import container_route, keys, unit_lines
from tests.support.process import WatcherProcess, base_config, provision_named_queue
from tests.test_worker_integration import python_route

pytestmark = pytest.mark.integration

# 40 parts of 256 KiB, uploaded four at a time: long enough that a marker sent among them (it sorts
# before "part-") would be consumed while most parts are still on their way.
_WRITE_PARTS = (
    'for i in $(seq -w 0 39); do head -c 262144 /dev/urandom > "$TMP_OUTPUT_DIR/part-000$i"; done; '
    'echo done > "$TMP_OUTPUT_DIR/_SUCCESS"'
)
_PARTS = [f"part-000{i:02d}" for i in range(40)]


def test_the_marker_is_consumed_only_once_every_part_is_in(
    s3: Any, localstack_endpoint: str, unique: str, tmp_path: Path
) -> None:
    bucket, calls_file = f"jobs-{unique}", tmp_path / "calls.jsonl"
    s3.create_bucket(Bucket=bucket)
    routes = [
        container_route(
            "write-parts",
            "process",
            tmp_path / "work",
            command=_WRITE_PARTS,
            output=f"s3://{bucket}/parts/",
            route={"bucket": bucket, "prefix": "in/"},
        ),
        python_route(
            "consume",
            "list_marker_folder",
            calls_file,
            bucket=bucket,
            prefix="parts/",
            suffix="_SUCCESS",
            options={"endpoint_url": localstack_endpoint},
        ),
    ]
    config = base_config("", routes)
    provision_named_queue(config, f"watcher-markers-{unique}", tmp_path)
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        s3.put_object(Bucket=bucket, Key="in/day.csv", Body=b"x")
        lines = unit_lines(worker, 2, timeout=120)
        assert sorted((line["route"], line["outcome"]) for line in lines) == [("consume", "ok"), ("write-parts", "ok")]
        [listed] = [json.loads(line) for line in calls_file.read_text().splitlines()]
        assert listed["found"] == [".watcher/log.txt", "_SUCCESS", *_PARTS]  # the job's log is in too
    finally:
        worker.stop()


def test_no_marker_is_written_when_a_part_cannot_be(jobs_bucket: str, s3: Any, unique: str, tmp_path: Path) -> None:
    # The parts also go to a bucket that does not exist: a real NoSuchBucket, a permanent failure.
    route = container_route(
        "write-parts",
        "process",
        tmp_path / "work",
        command='echo part > "$TMP_OUTPUT_DIR/part-00000" && echo done > "$TMP_OUTPUT_DIR/_SUCCESS"',
        output=[f"s3://{jobs_bucket}/parts/", {"uri": f"s3://no-such-bucket-{unique}/parts/", "prefix": "part-"}],
        route={"bucket": jobs_bucket, "prefix": "in/"},
    )
    config = base_config("", [route])
    provision_named_queue(config, f"watcher-markers-{unique}", tmp_path)
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        s3.put_object(Bucket=jobs_bucket, Key="in/day.csv", Body=b"x")
        [line] = unit_lines(worker, 1, timeout=60)
        assert line["outcome"] == "permanent" and "NoSuchBucket" in line["error"], line
        # The unit ended, and with it every upload it started (waited for, never abandoned): the part
        # reached the bucket that exists, the marker went nowhere.
        assert [key.split("/", 2)[2] for key in keys(s3, jobs_bucket, "parts/")] == ["part-00000"]
    finally:
        worker.stop()


@pytest.fixture
def jobs_bucket(s3: Any, unique: str) -> str:
    s3.create_bucket(Bucket=f"jobs-{unique}")
    return f"jobs-{unique}"
