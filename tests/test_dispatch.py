"""Dispatch: one message body -> units -> one outcome. No SQS involved: this is the part the
Lambda shim will share with the worker. Also the worker's parts that can be checked without SQS:
capacity and the delete batching (with a fake client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest
import structlog

from watcher.config import parse_config
from watcher.dispatch import Dispatcher
from watcher.errors import PermanentError, RetryableError
from watcher.handlers import create_handler
from watcher.metrics import Metrics
from watcher.routing import Unit
from watcher.worker.acks import BatchDeleter

seen: list[tuple[str, str]] = []
contexts: list[dict[str, Any]] = []


async def ok(unit: Unit, options: Mapping[str, Any]) -> None:
    seen.append((unit.route.name, unit.record.key))


async def capture_context(unit: Unit, options: Mapping[str, Any]) -> None:
    contexts.append(structlog.contextvars.get_contextvars())


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
async def test_units_log_with_their_context_and_leave_none_behind(records: int) -> None:
    contexts.clear()
    d, _ = dispatcher(("r", "in/", "capture_context", None))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(message_id="m-7", receive_count=2)
    try:
        outcome = await d.process(body(*[f"in/{i}.csv" for i in range(records)]), "m-7", 2)
        # One unit runs in the caller's task: its bindings must be undone there.
        assert structlog.contextvars.get_contextvars() == {"message_id": "m-7", "receive_count": 2}
    finally:
        structlog.contextvars.clear_contextvars()
    assert outcome.status == "ok"
    assert sorted(c["key"] for c in contexts) == [f"in/{i}.csv" for i in range(records)]
    assert all(c["route"] == "r" and c["handler"] == "python" and c["message_id"] == "m-7" for c in contexts)


async def test_capacity_lingers_to_gather_a_full_batch_of_slots() -> None:
    from watcher.worker.capacity import Capacity

    capacity = Capacity(10)
    assert await capacity.acquire_up_to(10) == 10

    async def release_one_by_one() -> None:
        for _ in range(10):
            await asyncio.sleep(0.001)
            await capacity.release(1)

    releasing = asyncio.create_task(release_one_by_one())
    assert await capacity.acquire_up_to(10, linger=1.0) == 10  # not 1: the slots freed one by one
    await releasing
    await capacity.release(10)
    assert await capacity.acquire_up_to(10, linger=0.0) == 10


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
