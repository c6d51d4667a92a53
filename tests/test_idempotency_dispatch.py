"""Dispatch with the idempotency store, on both backends: a unit runs once however often its message
comes (duplicates, retries, replays), a failed unit runs again, a message's other units are not
repeated, a deliberate re-run goes through, and a unit cancelled mid-way gives its claim back.
No SQS here: the worker's side is tests/test_idempotency_integration.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.idempotency import BACKENDS, idempotency_section
from watcher.app import App, parse_config
from watcher.dispatch import Directives
from watcher.errors import RetryableError
from watcher.records import S3Record
from watcher.routing import Unit

calls: list[tuple[str, str]] = []
failing: set[str] = set()  # routes that fail while listed here


async def record(unit: Unit, options: Mapping[str, Any]) -> None:
    calls.append((unit.route.name, unit.record.key))
    if unit.route.name in failing:
        raise RetryableError("downstream unavailable (test)")


hanging: list[asyncio.Event] = []  # set when `hang` starts (made in each test's own loop)


async def hang(unit: Unit, options: Mapping[str, Any]) -> None:
    calls.append((unit.route.name, unit.record.key))
    hanging[-1].set()
    await asyncio.sleep(3600)


def body(key: str, sequencer: str = "0055AED6DCD90281E5") -> str:
    record = {
        "eventVersion": "2.1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "b"}, "object": {"key": key, "size": 1, "sequencer": sequencer}},
    }
    return json.dumps({"Records": [record]})


@pytest.fixture(params=BACKENDS)
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    endpoint = request.getfixturevalue("dynamodb_endpoint") if request.param == "dynamodb" else None
    calls.clear()
    failing.clear()
    document = {
        "queue": {"name": "q", "visibility_timeout": 30},
        "idempotency": idempotency_section(str(request.param), tmp_path, endpoint),
        "routes": [
            {"name": "a", "prefix": "in/", "handler": {"type": "python", "function": f"{__name__}:record"}},
            {"name": "b", "prefix": "in/", "handler": {"type": "python", "function": f"{__name__}:record"}},
            {"name": "slow", "prefix": "slow/", "handler": {"type": "python", "function": f"{__name__}:hang"}},
        ],
    }
    application = App(parse_config(document, environ={}))
    yield application
    await application.close()


def skipped(app: App) -> float:
    value: float = app.metrics.skipped.labels("duplicate")._value.get()
    return value


async def test_a_duplicate_notification_runs_nothing_and_is_counted(app: App) -> None:
    first = await app.dispatcher.process(body("in/x.csv"), "m-1")
    second = await app.dispatcher.process(body("in/x.csv"), "m-2")  # S3 delivered it again
    assert first.status == second.status == "ok"
    assert sorted(calls) == [("a", "in/x.csv"), ("b", "in/x.csv")]
    assert [(u.route, u.skipped) for u in second.units] == [("a", "duplicate"), ("b", "duplicate")]
    assert skipped(app) == 2


async def test_a_new_version_of_the_object_runs_again(app: App) -> None:
    await app.dispatcher.process(body("in/x.csv", sequencer="0055AED6DCD90281E5"))
    await app.dispatcher.process(body("in/x.csv", sequencer="0055AED6DCD90281F0"))
    assert len(calls) == 4 and skipped(app) == 0


async def test_on_redelivery_only_the_unit_that_failed_runs(app: App) -> None:
    failing.add("b")
    outcome = await app.dispatcher.process(body("in/x.csv"), "m-1", 1)
    assert outcome.status == "retry" and outcome.route == "b"
    failing.clear()
    again = await app.dispatcher.process(body("in/x.csv"), "m-1", 2)  # the same message, redelivered
    assert again.status == "ok"
    assert sorted(calls) == [("a", "in/x.csv"), ("b", "in/x.csv"), ("b", "in/x.csv")]
    assert [(u.route, u.skipped) for u in again.units] == [("a", "duplicate"), ("b", None)]


async def test_ignore_idempotency_runs_a_completed_unit_again(app: App) -> None:
    await app.dispatcher.process(body("in/x.csv"))
    rerun = await app.dispatcher.process(body("in/x.csv"), directives=Directives(ignore_idempotency=True))
    assert rerun.status == "ok" and len(calls) == 4 and skipped(app) == 0


async def test_only_the_routes_asked_for_run(app: App) -> None:
    outcome = await app.dispatcher.process(body("in/x.csv"), directives=Directives(only_routes=frozenset({"b"})))
    assert calls == [("b", "in/x.csv")]
    assert [s.reason for s in outcome.skipped] == ["not_selected"]


async def test_a_unit_held_by_another_worker_is_retried_not_run(app: App) -> None:
    store = app.idempotency
    assert store is not None
    request_id = S3Record("b", "in/y.csv", "ObjectCreated:Put", sequencer="0055AED6DCD90281E5").request_id
    held = await store.claim("a", request_id, "s3://b/in/y.csv")  # another worker is on it
    assert held.state == "acquired"
    outcome = await app.dispatcher.process(body("in/y.csv"), directives=Directives(only_routes=frozenset({"a"})))
    assert outcome.status == "retry" and outcome.reason is not None and "in progress elsewhere" in outcome.reason
    assert calls == []


async def test_a_unit_cancelled_mid_way_gives_its_claim_back(app: App) -> None:
    for attempt in range(2):  # the second is claimed at once, not "in progress elsewhere"
        hanging.append(asyncio.Event())
        running = asyncio.create_task(app.dispatcher.process(body("slow/big.bin")))
        await asyncio.wait_for(hanging[-1].wait(), 10)
        running.cancel()  # the worker's shutdown, past its grace period
        with pytest.raises(asyncio.CancelledError):
            await running
        assert len(calls) == attempt + 1
