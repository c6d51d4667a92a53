"""Bad input must not hurt the host: hostile scripts, crashed workers, resource limits. Through
LocalStack and `watcher run`, on a real Docker engine and with host processes."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.containers import (
    Jobs,
    area_folders,
    areas_in,
    container_route,
    containers_of,
    jobs_running,
    keys,
    land,
    processes_with,
    read,
    script,
    unit_lines,
)
from tests.support.process import WatcherProcess, base_config, wait_until

pytestmark = pytest.mark.integration


def test_links_and_special_files_in_the_output_never_leak_host_files(
    jobs: Jobs, s3: Any, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues()
    secret = tmp_path / "host-secret.txt"  # on the work folder's file system, so a hard link can be made
    secret.write_text("host secret 4f1c\n")
    route = container_route(
        "hostile",
        jobs.runtime,
        jobs.work_dir,
        script=script("escape.sh"),
        output=f"s3://{jobs.bucket}/out/",
        environment={"HOST_SECRET": str(secret)},
        route={"prefix": "in/"},
    )
    worker = WatcherProcess(base_config(queues.url, [route]), tmp_path)
    try:
        worker.wait_started()
        land(s3, queues, jobs.bucket, "in/x.bin")
        [line] = unit_lines(worker, 1)
        assert line["outcome"] == "ok"
        uploaded = keys(s3, jobs.bucket, "out/")
        assert [key.split("/", 2)[2] for key in uploaded] == [".watcher/log.txt", "ok.txt"]
        for key in uploaded:
            content = read(s3, jobs.bucket, key)
            assert "root:x:0:0" not in content and "host secret" not in content
        skipped = {
            reason: worker.metric("watcher_container_outputs_skipped_total", {"route": "hostile", "reason": reason})
            for reason in ("symlink", "hardlink", "special")
        }
        # In a container the host file is not even visible, so only a host process can hard-link it.
        assert skipped == {"symlink": 2, "special": 1, "hardlink": 1 if jobs.runtime == "process" else 0}
        [line] = worker.events("outputs not uploaded")  # one line for the job, however many entries
        assert {"passwd (symlink)", "root (symlink)", "pipe (special)"} <= set(line["examples"])
        assert secret.read_text() == "host secret 4f1c\n"  # the host file itself is untouched
    finally:
        assert worker.stop() == 0


def test_a_worker_starting_after_a_crash_removes_what_the_dead_one_left(
    jobs: Jobs, s3: Any, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(visibility_timeout=120)
    route = container_route("long", jobs.runtime, jobs.work_dir, command="echo started; sleep 98.5")
    config = base_config(queues.url, [route], queue={"visibility_timeout": 120})
    crashed = WatcherProcess(config, tmp_path)
    crashed.wait_started()
    land(s3, queues, jobs.bucket, "in/long.bin")

    def job_running() -> bool:
        return jobs_running(jobs.runtime, jobs.work_dir)

    wait_until(job_running, 30, what="the job to run")
    crashed.process.kill()  # SIGKILL: no clean-up of any kind
    crashed.process.wait(10)
    assert areas_in(jobs.work_dir) and job_running()  # what a crash leaves behind

    successor = WatcherProcess(base_config(queues.url, [route], queue={"visibility_timeout": 120}), tmp_path)
    try:
        successor.wait_started()
        wait_until(lambda: not job_running(), 20, what="the orphaned job to be removed")
        wait_until(lambda: len(area_folders(jobs.work_dir)) == 1, 10, what="only the new worker's work area")
        removed = {
            kind: successor.metric("watcher_container_leftovers_removed_total", {"kind": kind})
            for kind in ("work_dir", jobs.runtime)
        }
        assert removed["work_dir"] == 1
        # one container; or the script's processes (the shell, and the sleep it started)
        assert removed[jobs.runtime] == 1 if jobs.runtime == "docker" else removed[jobs.runtime] >= 1
        assert successor.events("removed what a previous run left behind")
    finally:
        assert successor.stop() == 0


def test_sigterm_during_a_job_removes_its_container_and_hands_the_message_back(
    jobs: Jobs, s3: Any, make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(visibility_timeout=60)
    route = container_route("long", jobs.runtime, jobs.work_dir, command="sleep 99.5")
    config = base_config(queues.url, [route], queue={"visibility_timeout": 60}, worker={"shutdown_grace_seconds": 1})
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        message_id = land(s3, queues, jobs.bucket, "in/long.bin")
        wait_until(lambda: jobs_running(jobs.runtime, jobs.work_dir), 30, what="the job to run")
        worker.signal(signal.SIGTERM)
        assert worker.process.wait(15) == 0
        assert not jobs_running(jobs.runtime, jobs.work_dir)
        assert processes_with("sleep 99.5") == []
        back = wait_until(lambda: queues.receive(wait=1), 5, what="the message to be visible again")
        assert back[0]["MessageId"] == message_id
    finally:
        worker.stop()


def test_containers_run_locked_down_with_the_routes_limits(
    docker_jobs: Jobs, s3: Any, make_queues: Any, tmp_path: Path
) -> None:
    work_dir, bucket = docker_jobs.work_dir, docker_jobs.bucket
    queues = make_queues()
    route = container_route(
        "limited",
        "docker",
        work_dir,
        command="sleep 96.5",
        memory="64m",
        cpus=0.5,
        pids_limit=32,
        user="65534:65534",
    )
    worker = WatcherProcess(base_config(queues.url, [route], worker={"shutdown_grace_seconds": 1}), tmp_path)
    try:
        worker.wait_started()
        land(s3, queues, bucket, "in/x.bin")
        [container] = wait_until(lambda: containers_of(work_dir), 30, what="the container")
        host = container.attrs["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
        assert host["SecurityOpt"] == ["no-new-privileges:true"]
        assert host["Privileged"] is False
        assert host["NetworkMode"] == "none"
        assert (host["Memory"], host["MemorySwap"]) == (64 << 20, 64 << 20)
        assert (host["NanoCpus"], host["PidsLimit"]) == (500_000_000, 32)
        assert container.attrs["Config"]["User"] == "65534:65534"
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        assert set(mounts) == {"/watcher/input", "/watcher/output", "/watcher/script.sh"}
        assert not mounts["/watcher/input"]["RW"] and not mounts["/watcher/script.sh"]["RW"]
        assert not any("docker.sock" in m["Source"] for m in mounts.values())
        assert container.labels["io.watcher.route"] == "limited"
    finally:
        assert worker.stop() == 0


def test_a_job_killed_for_lack_of_memory_is_reported_as_such(
    docker_jobs: Jobs, s3: Any, make_queues: Any, tmp_path: Path
) -> None:
    work_dir, bucket = docker_jobs.work_dir, docker_jobs.bucket
    queues = make_queues()
    # dd allocates its 64 MB block at once; the container may use 16 MB.
    route = container_route(
        "hungry",
        "docker",
        work_dir,
        command="echo allocating; exec dd if=/dev/zero of=/dev/null bs=64M count=1",
        memory="16m",
    )
    worker = WatcherProcess(base_config(queues.url, [route]), tmp_path)
    try:
        worker.wait_started()
        land(s3, queues, bucket, "in/x.bin")
        line = unit_lines(worker, 1)[0]
        assert line["outcome"] == "retry"
        assert line["error"].startswith("killed: out of memory (memory limit 16777216 bytes, exit code 137)")
        assert worker.metric("watcher_container_jobs_total", {"route": "hungry", "result": "oom"}) == 1
    finally:
        assert worker.stop() == 0
