"""Dispatch: one message body -> units -> one outcome. No SQS involved: this is the part the
Lambda shim will share with the worker. Also the worker's parts that can be checked without SQS:
capacity, the delete batching and when a message gives its slot back (with a fake client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from watcher.app import parse_config
from watcher.dispatch import Dispatcher
from watcher.errors import PermanentError, RetryableError
from watcher.handlers.registry import create_handler
from watcher.logs import bind_log_fields, log_fields
from watcher.metrics import Metrics
from watcher.routing import Unit
from watcher.sqs import QueueInfo
from watcher.worker.acks import BatchDeleter
from watcher.worker.capacity import Capacity
from watcher.worker.heartbeat import VisibilityKeeper
from watcher.worker.loop import Worker

seen: list[tuple[str, str]] = []
contexts: list[dict[str, Any]] = []


async def ok(unit: Unit, options: Mapping[str, Any]) -> None:
    seen.append((unit.route.name, unit.record.key))


async def capture_context(unit: Unit, options: Mapping[str, Any]) -> None:
    contexts.append(log_fields())


async def slow(unit: Unit, options: Mapping[str, Any]) -> None:
    await asyncio.sleep(5)


async def retry(unit: Unit, options: Mapping[str, Any]) -> None:
    raise RetryableError("try later")


async def permanent(unit: Unit, options: Mapping[str, Any]) -> None:
    raise PermanentError("never")


def crash(unit: Unit, options: Mapping[str, Any]) -> None:
    raise KeyError("surprise")


async def socket_timeout(unit: Unit, options: Mapping[str, Any]) -> None:
    raise TimeoutError("read timed out")


class AsyncCallable:
    """An object whose ``__call__`` is a coroutine: it must be awaited, not run in a thread."""

    async def __call__(self, unit: Unit, options: Mapping[str, Any]) -> None:
        await asyncio.sleep(0)
        seen.append(("callable", unit.record.key))


callable_object = AsyncCallable()


def body(*keys: str) -> str:
    records = [
        {
            "eventVersion": "2.1",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": key, "size": 1}},
        }
        for key in keys
    ]
    return json.dumps({"Records": records})


def dispatcher(*routes: tuple[str, str, str, float | None]) -> tuple[Dispatcher, Metrics]:
    document = {
        "queue": {"name": "q"},
        "routes": [
            {
                "name": name,
                "prefix": prefix,
                "handler": {"type": "python", "function": f"tests.test_dispatch:{function}"},
                **({"timeout_seconds": timeout} if timeout else {}),
            }
            for name, prefix, function, timeout in routes
        ],
    }
    config = parse_config(document, environ={})
    metrics = Metrics()
    handlers = {route.name: create_handler(route) for route in config.routes}
    return Dispatcher(config, handlers, metrics), metrics


async def test_every_record_runs_every_matching_route() -> None:
    seen.clear()
    d, metrics = dispatcher(("a", "in/", "ok", None), ("b", "in/x", "ok", None))
    outcome = await d.process(body("in/x.csv", "in/y.csv", "out/z.csv"), "m-1")
    assert outcome.status == "ok"
    assert sorted(seen) == [("a", "in/x.csv"), ("a", "in/y.csv"), ("b", "in/x.csv")]
    assert [s.reason for s in outcome.skipped] == ["no_route"]
    assert metrics.records.labels("a", "ok")._value.get() == 2


async def test_a_unit_past_its_timeout_is_retryable() -> None:
    d, _ = dispatcher(("slow", "", "slow", 0.2))
    outcome = await asyncio.wait_for(d.process(body("k")), 3)
    assert outcome.status == "retry"
    assert outcome.reason == "route slow: timed out after 0.2s"


async def test_an_object_with_an_async_call_is_awaited() -> None:
    seen.clear()
    d, _ = dispatcher(("c", "", "callable_object", None))
    outcome = await d.process(body("k"))
    assert outcome.status == "ok"
    assert seen == [("callable", "k")]


@pytest.mark.parametrize(
    ("function", "status", "reason"),
    [
        ("retry", "retry", "route r: try later"),
        ("permanent", "permanent", "route r: never"),
        ("crash", "retry", "route r: KeyError: 'surprise'"),  # unknown failures never lose the file
        ("socket_timeout", "retry", "route r: TimeoutError: read timed out"),  # not our deadline
    ],
)
async def test_handler_errors_decide_the_outcome(function: str, status: str, reason: str) -> None:
    d, _ = dispatcher(("r", "", function, None))
    outcome = await d.process(body("k"))
    assert (outcome.status, outcome.reason, outcome.route) == (status, reason, "r")


async def test_a_permanent_failure_outranks_a_retryable_one_and_names_its_route() -> None:
    d, _ = dispatcher(("flaky", "", "retry", None), ("strict", "", "permanent", None), ("fine", "", "ok", None))
    outcome = await d.process(body("k"))
    assert outcome.status == "permanent"
    assert outcome.route == "strict"
    assert outcome.reason == "route strict: never"
    assert sorted(u.status for u in outcome.units) == ["ok", "permanent", "retry"]


async def test_an_unparseable_body_is_permanent_and_counted() -> None:
    d, metrics = dispatcher(("r", "", "ok", None))
    outcome = await d.process("{not json")
    assert outcome.status == "permanent"
    assert outcome.reason is not None and outcome.reason.startswith("unparseable message: message body is not JSON")
    assert metrics.errors.labels("parse")._value.get() == 1


async def test_a_message_with_nothing_to_do_is_ok() -> None:
    d, metrics = dispatcher(("r", "in/", "ok", None))
    outcome = await d.process(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}))
    assert outcome.status == "ok" and not outcome.units
    assert metrics.skipped.labels("test_event")._value.get() == 1


@pytest.mark.parametrize("records", [1, 2])
async def test_units_log_with_their_context(records: int) -> None:
    contexts.clear()
    d, _ = dispatcher(("r", "in/", "capture_context", None))
    # The test's task runs in its own copy of the context: what is bound here ends with it.
    bind_log_fields(message_id="m-7", receive_count=2)
    outcome = await d.process(body(*[f"in/{i}.csv" for i in range(records)]), "m-7", 2)
    left = log_fields()
    if records == 1:
        # One unit runs in the caller's task and leaves its summary there, for the caller's one line.
        assert left == {
            "message_id": "m-7",
            "receive_count": 2,
            "bucket": "b",
            "key": "in/0.csv",
            "route": "r",
            "handler": "python",
            "outcome": "ok",
            "duration_ms": left["duration_ms"],
            "dataset_uri": "s3://b/in/0.csv",
        }
    else:  # several run in tasks of their own, each logging its own line: nothing left behind
        assert left == {"message_id": "m-7", "receive_count": 2}
    assert outcome.status == "ok"
    assert sorted(c["key"] for c in contexts) == [f"in/{i}.csv" for i in range(records)]
    assert all(c["route"] == "r" and c["handler"] == "python" and c["message_id"] == "m-7" for c in contexts)


async def test_capacity_lingers_to_gather_a_full_batch_of_slots() -> None:
    capacity = Capacity(10)
    assert await capacity.acquire_up_to(10) == 10

    async def release_one_by_one() -> None:
        for _ in range(10):
            await asyncio.sleep(0.001)
            capacity.release(1)

    releasing = asyncio.create_task(release_one_by_one())
    assert await capacity.acquire_up_to(10, linger=1.0) == 10  # not 1: the slots freed one by one
    await releasing
    capacity.release(10)
    assert await capacity.acquire_up_to(10, linger=0.0) == 10


async def test_a_poller_beaten_to_a_batch_of_slots_lingers_on_for_its_own() -> None:
    """Two pollers wait for 10 slots each; the first 10 freed go to one of them. The other keeps
    waiting for a full batch until its linger ends, instead of taking the next slot freed alone."""
    capacity = Capacity(20)
    assert await capacity.acquire_up_to(20) == 20
    first = asyncio.create_task(capacity.acquire_up_to(10, linger=5.0))
    second = asyncio.create_task(capacity.acquire_up_to(10, linger=5.0))
    await asyncio.sleep(0)
    for _ in range(20):
        capacity.release(1)
        await asyncio.sleep(0.001)
    assert sorted(await asyncio.gather(first, second)) == [10, 10]


async def test_a_capacity_below_the_batch_size_does_not_linger_for_slots_that_cannot_exist() -> None:
    capacity = Capacity(3)
    assert await capacity.acquire_up_to(10) == 3
    capacity.release(3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await capacity.acquire_up_to(10, linger=5.0) == 3
    assert loop.time() - started < 1.0, "took the three slots at once rather than waiting 5 s for ten"


# --- the worker's acknowledgements, with a fake SQS client -----------------------------------------


class FakeSqs:
    """Answers DeleteMessageBatch and ChangeMessageVisibility once ``gate`` is open, recording them."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.visibility: list[tuple[str, int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def delete_message_batch(self, **request: Any) -> dict[str, Any]:
        self.batches.append([entry["ReceiptHandle"] for entry in request["Entries"]])
        await self.gate.wait()
        return {"Successful": [{"Id": entry["Id"]} for entry in request["Entries"]]}

    async def change_message_visibility(self, **request: Any) -> dict[str, Any]:
        self.visibility.append((request["ReceiptHandle"], request["VisibilityTimeout"]))
        await self.gate.wait()
        return {}


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``predicate`` holds (a guard against hanging, not a timing check)."""
    for _ in range(5000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


async def test_deletes_go_in_batches_of_ten_and_each_caller_learns_its_result() -> None:
    sqs, metrics = FakeSqs(), Metrics()
    deleter = BatchDeleter(sqs, "q", metrics)
    collector = asyncio.create_task(deleter.run())
    try:
        results = await asyncio.wait_for(asyncio.gather(*(deleter.delete(f"m{i}", f"r{i}") for i in range(25))), 10)
    finally:
        collector.cancel()
    assert results == [True] * 25
    assert sorted(len(batch) for batch in sqs.batches) == [5, 10, 10]
    assert sorted(r for batch in sqs.batches for r in batch) == sorted(f"r{i}" for i in range(25))
    assert metrics.deleted._value.get() == 25


async def test_deletes_pending_at_once_are_bounded() -> None:
    sqs = FakeSqs()
    sqs.gate.clear()  # SQS does not answer yet
    deleter = BatchDeleter(sqs, "q", Metrics(), max_pending=10)
    collector = asyncio.create_task(deleter.run())
    try:
        pending = [deleter.submit(f"m{i}", f"r{i}") for i in range(10)]
        assert None not in pending
        assert deleter.submit("m10", "r10") is None  # full: refused, not queued
        waiting = asyncio.create_task(deleter.delete("m10", "r10"))  # waits for room instead
        await eventually(lambda: len(sqs.batches) == 1, "the first batch sent")
        assert not waiting.done() and sqs.batches == [[f"r{i}" for i in range(10)]]
        sqs.gate.set()
        assert await asyncio.wait_for(waiting, 10) is True
        assert [await future for future in pending if future is not None] == [True] * 10
        assert sqs.batches[1] == ["r10"]
    finally:
        collector.cancel()


class OddAnswerSqs(FakeSqs):
    """A fake for a fault SQS cannot be made to produce: an answer naming an entry never sent."""

    async def delete_message_batch(self, **request: Any) -> dict[str, Any]:
        self.batches.append([entry["ReceiptHandle"] for entry in request["Entries"]])
        return {"Successful": [{"Id": "no-such-entry"}]}


async def test_an_odd_answer_to_a_delete_ends_with_not_deleted_and_nothing_left_waiting() -> None:
    sqs, metrics = OddAnswerSqs(), Metrics()
    deleter = BatchDeleter(sqs, "q", metrics, max_pending=10)
    collector = asyncio.create_task(deleter.run())
    try:
        results = await asyncio.wait_for(asyncio.gather(*(deleter.delete(f"m{i}", f"r{i}") for i in range(3))), 10)
        assert results == [False] * 3  # the messages come back after their visibility timeout
        assert await asyncio.wait_for(deleter.delete("m3", "r3"), 10) is False  # and room was given back
    finally:
        collector.cancel()
    assert metrics.errors.labels("delete")._value.get() == 2 and metrics.deleted._value.get() == 0


def fake_worker(max_pending: int) -> tuple[Worker, FakeSqs]:
    config = parse_config(
        {
            "queue": {"name": "q", "max_in_flight": 20},
            "routes": [
                {"name": "fine", "prefix": "ok/", "handler": {"type": "log"}},
                {"name": "flaky", "prefix": "bad/", "handler": {"type": "python", "function": f"{__name__}:retry"}},
            ],
        },
        environ={},
    )
    sqs, metrics = FakeSqs(), Metrics()
    worker = Worker(config, metrics)
    worker._sqs = sqs
    worker._queue = QueueInfo("q", "arn:aws:sqs:us-east-1:000000000000:q", "dlq", 5)
    worker._keeper = VisibilityKeeper(sqs, "q", 30, metrics)
    worker._deleter = BatchDeleter(sqs, "q", metrics, max_pending=max_pending)
    worker._dispatcher = Dispatcher(config, {r.name: create_handler(r) for r in config.routes}, metrics)
    return worker, sqs


def sqs_message(message_id: str, key: str) -> dict[str, Any]:
    return {"MessageId": message_id, "ReceiptHandle": f"r-{message_id}", "Body": body(key), "Attributes": {}}


async def handle(worker: Worker, messages: list[dict[str, Any]]) -> list[asyncio.Task[None]]:
    """What a poller does: take the slots, then start one task per message."""
    assert await worker.capacity.acquire_up_to(len(messages)) == len(messages)
    return worker._start(messages)


async def test_a_done_message_frees_its_slot_before_the_delete_returns_a_failed_one_after_its_backoff() -> None:
    worker, sqs = fake_worker(max_pending=40)
    assert worker._deleter is not None
    collector = asyncio.create_task(worker._deleter.run())
    sqs.gate.clear()
    try:
        done, failed = await handle(worker, [sqs_message("a", "ok/a.csv"), sqs_message("b", "bad/b.csv")])
        await eventually(lambda: bool(sqs.batches and sqs.visibility), "the delete and the backoff sent")
        # The delete is under way: the done message's task has ended and its slot is free again, but
        # the worker holds it until the delete is answered. The failed message keeps its slot (and
        # its task) until its backoff is set.
        assert done.done() and not failed.done()
        assert worker.capacity._free == 19
        assert worker.metrics.in_flight._value.get() == 1
        assert worker.in_flight == 2 and worker.processed == 0
        sqs.gate.set()
        await asyncio.wait_for(failed, 10)
        await eventually(lambda: worker.processed == 2, "both messages settled")
    finally:
        collector.cancel()
    assert worker.capacity._free == 20 and worker.metrics.in_flight._value.get() == 0 and worker.in_flight == 0
    assert sqs.batches == [["r-a"]]
    assert [receipt for receipt, _ in sqs.visibility] == ["r-b"]
    assert worker.metrics.deleted._value.get() == 1 and worker.metrics.retried._value.get() == 1


async def test_when_the_deletes_pending_are_at_their_cap_a_done_message_keeps_its_slot() -> None:
    worker, sqs = fake_worker(max_pending=10)
    assert worker._deleter is not None
    collector = asyncio.create_task(worker._deleter.run())
    sqs.gate.clear()
    try:
        tasks = await handle(worker, [sqs_message(f"m{i}", f"ok/{i}.csv") for i in range(11)])
        await eventually(lambda: len(sqs.batches) == 1, "the first delete batch sent")
        assert worker.capacity._free == 19  # ten freed theirs; the eleventh waits for room, holding its slot
        sqs.gate.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await eventually(lambda: worker.processed == 11, "every delete answered")
    finally:
        collector.cancel()
    assert worker.capacity._free == 20
    assert sorted(r for batch in sqs.batches for r in batch) == sorted(f"r-m{i}" for i in range(11))
    assert worker.metrics.deleted._value.get() == 11
