"""`watcher dlq` on LocalStack, with dead letters put there by a real worker: permanent failures with
their reasons, a message whose retries ran out (moved by SQS's own redrive), an unparseable body.
stats and list show them; after the handler is fixed, replay reprocesses exactly the selected ones
and leaves the others; --dry-run changes nothing; a replay interrupted halfway loses nothing; redrive
moves everything back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fixtures import s3_event
from tests.support.process import REPO, WatcherProcess, base_config, calls, wait_until
from tests.test_worker_integration import python_route, run_cli

pytestmark = pytest.mark.integration


def routes(calls_file: Path, strict: str) -> list[dict[str, Any]]:
    return [
        python_route("strict", strict, calls_file, prefix="strict/"),
        python_route("parse", "fail_permanent", calls_file, prefix="parse/"),
        python_route("flaky", "fail_retryable", calls_file, prefix="flaky/"),
    ]


def fill(queues: Any, tmp_path: Path) -> tuple[Path, Path]:
    """Run a worker until the DLQ holds 3 strict, 2 parse, 1 flaky (redriven) and 1 unparseable
    message; return the config file and the handler calls file."""
    calls_file = tmp_path / "calls.jsonl"
    config = base_config(queues.url, routes(calls_file, "fail_permanent"))
    worker = WatcherProcess(config, tmp_path)
    try:
        worker.wait_started()
        for key in ("strict/a.csv", "strict/b.csv", "strict/c.csv", "parse/x.csv", "parse/y.csv", "flaky/z.csv"):
            queues.send(s3_event("lake", key))
        queues.send("this is not a notification")
        wait_until(lambda: queues.depth(queues.dlq_url)["visible"] >= 7, 60, what="7 dead letters")
    finally:
        assert worker.stop() == 0
    # The worker's last long poll, cancelled at its shutdown, stays open in LocalStack (as in SQS)
    # until its wait time ends: a message replayed meanwhile would go to that abandoned receive and
    # stay in flight for the visibility timeout. Replays start after it.
    time.sleep(config["queue"]["wait_time_seconds"] + 0.5)
    path = tmp_path / "dlq.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, calls_file


def dlq(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("dlq", *args)


def test_stats_list_dry_run_and_a_selective_replay_after_a_fix(make_queues: Any, tmp_path: Path) -> None:
    queues = make_queues(max_receive_count=2)
    config, calls_file = fill(queues, tmp_path)

    stats = dlq("stats", "-c", str(config))
    assert stats.returncode == 0, stats.stderr
    assert "7 messages" in stats.stdout
    assert "1 moved by SQS's own redrive" in stats.stdout
    by_route = stats.stdout.split("by route:")[1].split("by error")[0]
    assert {line.split(None, 1)[1]: int(line.split()[0]) for line in by_route.strip().splitlines()} == {
        "strict": 3,
        "parse": 2,
        "(redriven by SQS)": 1,
        "-": 1,
    }
    assert "unparseable message: message body is not JSON" in stats.stdout

    listed = dlq("list", "-c", str(config), "--route", "strict", "--json")
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(line["objects"][0] for line in lines) == [f"s3://lake/strict/{k}.csv" for k in "abc"]
    assert all(line["error"].startswith("route strict: bad input: strict/") for line in lines)
    one = dlq("list", "-c", str(config), "--error-match", r"strict/b\.csv")
    assert len(one.stdout.splitlines()) == 1 and "s3://lake/strict/b.csv" in one.stdout

    dry = dlq("replay", "-c", str(config), "--route", "strict", "--dry-run")
    assert sum(line.startswith("would replay ") for line in dry.stdout.splitlines()) == 3, dry.stdout
    assert queues.depth(queues.dlq_url)["visible"] == 7 and queues.depth()["visible"] == 0

    # The handler is fixed: a worker whose strict route succeeds, and a replay of strict only.
    fixed = WatcherProcess(base_config(queues.url, routes(calls_file, "record")), tmp_path)
    try:
        fixed.wait_started()
        before = len(calls(calls_file))
        replay = dlq("replay", "-c", str(config), "--route", "strict", "--error-match", "bad input", "--rate", "50")
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert "3 replayed" in replay.stdout
        wait_until(lambda: len(calls(calls_file)) >= before + 3, 30, what="the replayed units")
        time.sleep(2)
        rerun = calls(calls_file)[before:]
        assert sorted(c["key"] for c in rerun) == ["strict/a.csv", "strict/b.csv", "strict/c.csv"]
        assert queues.depth(queues.dlq_url)["visible"] == 4  # the other routes' letters are still there
    finally:
        assert fixed.stop() == 0


def test_an_interrupted_replay_loses_nothing_and_redrive_moves_everything_back(
    make_queues: Any, tmp_path: Path
) -> None:
    queues = make_queues(max_receive_count=2)
    config, _ = fill(queues, tmp_path)
    replay = subprocess.Popen(
        [sys.executable, "-m", "watcher", "dlq", "replay", "-c", str(config), "--rate", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.5)  # a few messages at one a second
    replay.send_signal(signal.SIGINT)
    out, _ = replay.communicate(timeout=30)
    assert "stopped by Ctrl-C after the message under way" in out
    replayed = int(out.split(" replayed")[0].rsplit(":", 1)[1].strip())
    assert 1 <= replayed < 7
    wait_until(lambda: queues.depth(queues.dlq_url)["visible"] == 7 - replayed, 10, what="the rest given back")
    assert queues.depth()["visible"] == replayed  # nothing lost, nothing twice

    redrive = dlq("redrive", "-c", str(config), "--rate", "50")
    assert redrive.returncode == 0, redrive.stdout + redrive.stderr
    assert "task COMPLETED" in redrive.stdout
    assert queues.depth(queues.dlq_url)["visible"] == 0
    assert queues.depth()["visible"] == 7
    status = dlq("redrive", "-c", str(config), "--status")
    assert "task COMPLETED" in status.stdout


def test_export_keeps_every_message_and_purge_wants_yes(make_queues: Any, tmp_path: Path) -> None:
    queues = make_queues()
    for i in range(12):
        queues.sqs.send_message(
            QueueUrl=queues.dlq_url,
            MessageBody=s3_event("lake", f"in/{i}.csv"),
            MessageAttributes={"watcher.error": {"DataType": "String", "StringValue": f"route r: broken {i}"}},
        )
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(base_config(queues.url, [{"name": "r", "handler": {"type": "log"}}])))
    out = tmp_path / "dlq.jsonl"
    exported = dlq("export", "-c", str(config), str(out))
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["error"] for line in lines) == sorted(f"route r: broken {i}" for i in range(12))
    assert queues.depth(queues.dlq_url)["visible"] == 12  # exported, not consumed
    refused = dlq("purge", "-c", str(config))
    assert refused.returncode == 2 and queues.depth(queues.dlq_url)["visible"] == 12
    assert dlq("purge", "-c", str(config), "--yes").returncode == 0
    wait_until(lambda: queues.depth(queues.dlq_url)["visible"] == 0, 30, what="the purge")
