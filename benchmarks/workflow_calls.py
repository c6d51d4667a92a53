"""Workflow-call benchmark: ``watcher run`` with a ``workflow`` route against a raw loop doing the
same SQS and HTTP work.

An on-demand benchmark, not a test. Against a running LocalStack (``watcher local up``)::

    python benchmarks/workflow_calls.py                   # N=1000 calls, concurrency 20
    python benchmarks/workflow_calls.py --messages 3000 --repeat 5   # medians of 5 rounds
    python benchmarks/workflow_calls.py --messages 3000 --concurrency 40 --endpoint http://127.0.0.1:4566

The Fire-Insights-like server of tests/support/fire_server.py runs in a child process on a free
127.0.0.1 port (no failures, no polling), stopped at the end. Each of (a) and (b) gets a fresh queue
(DLQ + RedrivePolicy) preloaded with N S3 ``_SUCCESS`` notifications (distinct datasets).

(a) ``python -m watcher run`` as a subprocess with one ``workflow`` route (token from ``${env:...}``,
    ``max_in_flight: C``) at the default log level (``--log-level``), timed from the first message
    received to ``watcher_sqs_messages_deleted_total`` == N on /metrics.
(b) the fair baseline: a raw aiobotocore loop, ceil(C/10) coroutines each receiving 10 messages,
    making the same POST for each (URL, headers, JSON body; one aiohttp session) concurrently, then
    deleting them with one DeleteMessageBatch: the same SQS and HTTP work at the same concurrency,
    without watcher. Timed from the first messages received to the N-th delete.
(c) for reference, a bare aiohttp loop: C coroutines make the same N POSTs, no SQS at all.

Each phase must deliver exactly N POSTs to the server. A round runs (a), (b), (b), (a), (c): on two
cores shared with LocalStack and the server the machine's speed drifts within a minute, and the
mirrored order keeps that drift from favouring whichever phase runs first. A round's a/b is (a)'s
calls per second over its two phases divided by (b)'s. With ``--repeat R``, R rounds run and the
medians over every phase run are shown, with a/b per round. CPU ms per call: the worker process's in
(a), this process's in (b) (over the same interval as the rate). The target is a >= 0.8 x b, the
median of the per-round ratios. Results go to
benchmarks/results/workflow-<timestamp>.json (git-ignored); the queues are deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support and benchmarks.throughput, when run as a script

from aiobotocore.session import get_session  # noqa: E402

from benchmarks.throughput import (  # noqa: E402
    CLK_TCK,
    REGION,
    DeletedLines,
    Queues,
    check_endpoint,
    client_kwargs,
    cpu_ticks,
    free_port,
    logging_level,
    round_ratio,
    scrape,
    scrape_deleted,
    summarise,
    tail,
)
from watcher import __version__  # noqa: E402

BUCKET = "watcher-bench-lake"
TOKEN = f"bench-{uuid.uuid4().hex}"
EXECUTE = "/api/v1/workflow/execute"
RESULTS_DIR = REPO / "benchmarks" / "results"
STALL_SECONDS = 60.0
TARGET_RATIO = 0.8


def dataset(index: int) -> str:
    return f"events/2026/11/23/run-{index:06d}"


def success_event(index: int) -> str:
    record = {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2026-11-23T04:12:09.518Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
               "object": {"key": f"{dataset(index)}/_SUCCESS", "size": 0, "eTag": uuid.uuid4().hex,
                          "sequencer": f"{index:018X}"}},
    }  # fmt: skip
    return json.dumps({"Records": [record]})


# --- the server, in a child process -----------------------------------------------------------


def serve(conn: Any, token: str, parent: int) -> None:
    from tests.support.fire_server import FireServer

    with FireServer(token) as server:
        conn.send(server.url)
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline and os.getppid() == parent:
            if not conn.poll(1):
                continue
            if conn.recv() == "stop":
                break
            conn.send(len(server.calls()))


def server_posts(conn: Any) -> int:
    conn.send("count")
    if not conn.poll(10):
        raise RuntimeError("the server did not answer")
    return int(conn.recv())


# --- (a) watcher run ----------------------------------------------------------------------------


def run_worker(
    endpoint: str, queue_url: str, url: str, n: int, concurrency: int, workdir: Path, log_level: str
) -> dict[str, Any]:
    port = free_port()
    handler = {"type": "workflow", "url": url, "workflow_id": "42", "token": "${env:BENCH_FIRE_TOKEN}"}
    config = {
        "aws": {"region": REGION, "endpoint_url": endpoint},
        "queue": {"url": queue_url, "wait_time_seconds": 1, "visibility_timeout": 60, "max_in_flight": concurrency},
        "worker": {"shutdown_grace_seconds": 10},
        "metrics": {"port": port, "host": "127.0.0.1"},
        "logging": {"level": log_level, "format": "json"},
        "routes": [{"name": "fire", "prefix": "events/", "suffix": "_SUCCESS", "handler": handler}],
    }
    (workdir / "watcher.yaml").write_text(json.dumps(config))  # JSON is YAML
    log_path = workdir / "worker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", BENCH_FIRE_TOKEN=TOKEN, NO_PROXY="127.0.0.1")
    command = [sys.executable, "-m", "watcher", "run", "-c", str(workdir / "watcher.yaml")]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        # Start: the first message received (scraped every 5 ms until then). End: the N-th "message
        # done" line with action deleted in the worker's own log: scraping /metrics every few ms
        # until the end would cost the worker CPU and event-loop time a 15 s Prometheus scrape never
        # does (benchmarks/throughput.py does the same).
        started, worker_start = 0.0, 0
        deadline = time.monotonic() + 60
        while not started:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited with {process.returncode}:\n{tail(log_path)}")
            if (scrape(port) or {}).get("watcher_sqs_messages_received_total", 0) > 0:
                started, worker_start = time.perf_counter(), cpu_ticks(process.pid)
            elif time.monotonic() > deadline:
                raise RuntimeError(f"the worker received nothing within 60 s:\n{tail(log_path)}")
            time.sleep(0.005)
        # Above info the worker writes no line per message: scrape then, every 50 ms.
        counter = DeletedLines(log_path) if logging_level(log_level) <= logging_level("info") else None
        deleted, last, progress = 0.0, -1.0, time.monotonic()
        while deleted < n:
            time.sleep(0.005 if counter is not None else 0.05)
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited with {process.returncode}:\n{tail(log_path)}")
            deleted = counter.count() if counter is not None else scrape_deleted(port)
            if deleted != last:
                last, progress = deleted, time.monotonic()
            elif time.monotonic() - progress > STALL_SECONDS:
                raise RuntimeError(f"stalled at {deleted:.0f}/{n} deleted:\n{tail(log_path)}")
        elapsed, worker_ms = time.perf_counter() - started, (cpu_ticks(process.pid) - worker_start) * 1000 / CLK_TCK
        samples = scrape(port) or {}  # once, after the clock stopped: the worker's own account
        ok = samples.get('watcher_http_requests_total{route="fire",status="200"}', 0.0)
        measured = {"calls": n, "seconds": elapsed, "rate": n / elapsed, "deleted": deleted, "http_200": ok}
        return measured | {"cpu_ms_per_call": worker_ms / n}
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- (b) a raw aiobotocore + aiohttp loop, (c) a bare aiohttp loop ----------------------------------


def new_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=0)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))


async def post(session: aiohttp.ClientSession, url: str, path: str) -> int:
    """The POST the workflow route makes for the dataset at ``path``."""
    body = {"workflowId": "42", "parameters": f"--var datapath=s3://{BUCKET}/{path}"}
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    headers.update({"Idempotency-Key": uuid.uuid4().hex, "User-Agent": f"watcher/{__version__}"})
    async with session.post(url, data=json.dumps(body).encode(), headers=headers) as response:
        await response.read()
        return response.status


async def raw_loop(endpoint: str, queue_url: str, url: str, n: int, concurrency: int) -> dict[str, Any]:
    """Receive 10, POST for each at once, delete the batch: ceil(C/10) such loops."""
    loops = -(-concurrency // 10)
    statuses: list[int] = []
    deleted, started, ended, cpu_started, cpu_ended = 0, 0.0, 0.0, 0.0, 0.0
    done = asyncio.Event()
    async with (
        new_session() as session,
        get_session().create_client("sqs", **client_kwargs(endpoint, pool=loops + 10)) as sqs,
    ):
        await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])  # connected, like (a)

        async def consume() -> None:
            nonlocal deleted, started, ended, cpu_started, cpu_ended
            while deleted < n:
                response = await sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                messages = response.get("Messages", [])
                if not messages:
                    continue
                if not started:
                    started, cpu_started = time.perf_counter(), time.process_time()
                paths = []
                for message in messages:
                    key = json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"]
                    paths.append(key.removesuffix("/_SUCCESS"))
                statuses.extend(await asyncio.gather(*(post(session, url, path) for path in paths)))
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                result = await sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
                deleted += len(result.get("Successful", []))
            if not ended:
                ended, cpu_ended = time.perf_counter(), time.process_time()
            done.set()

        tasks = [asyncio.create_task(consume()) for _ in range(loops)]
        await asyncio.wait_for(done.wait(), timeout=600)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = ended - started
    measured = {"calls": len(statuses), "seconds": elapsed, "rate": n / elapsed, "http_200": statuses.count(200)}
    return measured | {"cpu_ms_per_call": (cpu_ended - cpu_started) * 1000 / n}


async def bare_loop(url: str, n: int, concurrency: int) -> dict[str, Any]:
    indexes = iter(range(n))
    statuses: list[int] = []
    async with new_session() as session:

        async def work() -> None:
            for i in indexes:
                statuses.append(await post(session, url, dataset(i)))

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(work() for _ in range(concurrency))), timeout=600)
        elapsed = time.perf_counter() - started
    return {"calls": len(statuses), "seconds": elapsed, "rate": n / elapsed, "http_200": statuses.count(200)}


# --- main ---------------------------------------------------------------------------------------

# As in throughput.py: (a) and (b) twice per round, mirrored, so that the machine's drift within a
# round does not favour whichever phase runs first or second.
ROUND_ORDER = ("worker", "raw_loop", "raw_loop", "worker", "bare_aiohttp")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="N, calls per phase (default 1000)")
    parser.add_argument("--concurrency", type=int, default=20, help="C, max_in_flight / coroutines (default 20)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the three phases; medians shown")
    parser.add_argument("--endpoint", default="http://127.0.0.1:4566", help="LocalStack (default %(default)s)")
    parser.add_argument("--log-level", default="info", help="the worker's logging.level (default: %(default)s)")
    args = parser.parse_args()
    n, concurrency, endpoint = args.messages, args.concurrency, args.endpoint
    if n < 1 or concurrency < 1 or args.repeat < 1:
        parser.error("--messages, --concurrency and --repeat must be at least 1")
    check_endpoint(endpoint)
    results: dict[str, Any] = {"timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "messages": n}
    results.update(concurrency=concurrency, repeat=args.repeat, endpoint=endpoint, python=platform.python_version())
    results.update(cpus=os.cpu_count(), load_average=os.getloadavg())
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    server = spawn.Process(target=serve, args=(theirs, TOKEN, os.getpid()), daemon=True)
    server.start()
    queues = Queues(endpoint)
    rounds: dict[str, list[dict[str, Any]]] = {"worker": [], "raw_loop": [], "bare_aiohttp": []}
    ratios: list[float] = []
    try:
        if not ours.poll(30):
            raise RuntimeError("the workflow server did not start")
        url = ours.recv() + EXECUTE
        events = [success_event(i) for i in range(n)]
        posts_before = 0

        def posts_since() -> int:
            nonlocal posts_before
            now = server_posts(ours)
            count, posts_before = now - posts_before, now
            return count

        def worker_phase(prefix: str, name: str) -> dict[str, Any]:
            queue_url = queues.create(name)
            queues.preload(queue_url, events)
            print(f"{prefix}(a) watcher run: {n} workflow calls ...", end=" ", flush=True)
            with tempfile.TemporaryDirectory(prefix="watcher-bench-") as tmp:
                return run_worker(endpoint, queue_url, url, n, concurrency, Path(tmp), args.log_level)

        def raw_phase(prefix: str, name: str) -> dict[str, Any]:
            queue_url = queues.create(name)
            queues.preload(queue_url, events)
            print(f"{prefix}(b) raw aiobotocore + aiohttp loop: {n} messages ...", end=" ", flush=True)
            return asyncio.run(raw_loop(endpoint, queue_url, url, n, concurrency))

        def bare_phase(prefix: str, name: str) -> dict[str, Any]:
            print(f"{prefix}(c) bare aiohttp: {n} POSTs ...", end=" ", flush=True)
            return asyncio.run(bare_loop(url, n, concurrency))

        phases: dict[str, Callable[[str, str], dict[str, Any]]] = {
            "worker": worker_phase,
            "raw_loop": raw_phase,
            "bare_aiohttp": bare_phase,
        }
        for index in range(1, args.repeat + 1):
            prefix = f"round {index}/{args.repeat}: " if args.repeat > 1 else ""
            measured: dict[str, list[dict[str, Any]]] = {key: [] for key in rounds}
            for position, key in enumerate(ROUND_ORDER):
                row = phases[key](prefix, f"wf{index}-{position}{key[0]}")
                measured[key].append(row | {"server_posts": posts_since()})
                print(f"{row['rate']:.0f} calls/s", flush=True)
            ratios.append(round_ratio(measured["worker"], measured["raw_loop"], count="calls"))
            for key, phase_rows in measured.items():
                rounds[key].extend(phase_rows)
    finally:
        queues.delete_all()
        ours.send("stop")
        server.join(15)
        if server.is_alive():
            server.kill()
    for label, runs in rounds.items():
        for row in runs:
            if row["server_posts"] != n or row["http_200"] != n:
                raise RuntimeError(f"{label}: {row['server_posts']} POSTs, {row['http_200']} x 200; want {n}")
    results.update({name: summarise(runs) for name, runs in rounds.items()})
    a, b, c = results["worker"], results["raw_loop"], results["bare_aiohttp"]
    results["round_order"] = list(ROUND_ORDER)
    results["ratios_a_b"] = ratios
    results["ratio_a_b_median"] = statistics.median(ratios)
    results["ratio_a_c"] = a["rate"] / c["rate"]
    results["target_met"] = results["ratio_a_b_median"] >= TARGET_RATIO
    median = "median of " + str(args.repeat) + " rounds" if args.repeat > 1 else "one round"
    print(f"\nN={n} calls, concurrency {concurrency}, {endpoint}, worker log level {args.log_level}, {median}\n")
    print(f"{'phase':<38} {'calls':>6} {'seconds':>8} {'calls/s':>8} {'CPU ms/call':>11}")
    rows = (("(a) watcher run (SQS + HTTP)", a), ("(b) raw aiobotocore + aiohttp loop", b), ("(c) bare aiohttp", c))
    for label, row in rows:
        cpu = f"{row['cpu_ms_per_call']:>11.3f}" if "cpu_ms_per_call" in row else f"{'':>11}"
        print(f"{label:<38} {row['calls']:>6} {row['seconds']:>8.2f} {row['rate']:>8.1f} {cpu}")
    print("\nCPU ms/call: the worker process's in (a), this process's in (b); each phase delivered N POSTs.")
    print("a/b per round: " + ", ".join(f"{r:.2f}" for r in ratios))
    print(f"a/b = {results['ratio_a_b_median']:.2f} (median; target a >= {TARGET_RATIO} x b: ", end="")
    print(f"{'MET' if results['target_met'] else 'NOT MET'}); a/c = {results['ratio_a_c']:.2f} (c makes no SQS calls)")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"workflow-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
