"""The Lambda shim's record -> batchItemFailures logic, on real SQS event payloads (the AWS documentation's
standard and FIFO samples as templates, S3 and SNS-wrapped bodies from tests/fixtures), with the real App,
dispatcher and handlers. No SQS here: the batches below either succeed (Lambda deletes, the shim calls nothing)
or are checked before their outcomes are carried out; tests/test_lambda_shim_integration.py carries them out
against SQS, and tests/test_lambda_function_integration.py runs the packaged function on a Lambda runtime."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures import load_fixture, load_fixture_json, s3_event
from tests.support.lambda_events import FIFO_SAMPLE, Context, batch, failures, ids, make_shim, write_config
from tests.support.process import free_port
from watcher.dispatch import ATTR_ROUTES
from watcher.errors import PermanentError, RetryableError
from watcher.lambda_.records import NotAnSqsEvent, records_of
from watcher.lambda_.shim import Shim
from watcher.outcome import batch_item_failures
from watcher.routing import Unit

running = 0
most_at_once = 0
started: list[str] = []
made: list[Shim] = []  # closed after each test


async def ok(unit: Unit, options: Mapping[str, Any]) -> None:
    started.append(unit.record.key)


async def slow(unit: Unit, options: Mapping[str, Any]) -> None:
    global running, most_at_once
    started.append(unit.record.key)
    running += 1
    most_at_once = max(most_at_once, running)
    try:
        await asyncio.sleep(float(options.get("seconds", 0.2)))
    finally:
        running -= 1


async def retry(unit: Unit, options: Mapping[str, Any]) -> None:
    started.append(unit.record.key)
    raise RetryableError("downstream busy")


async def permanent(unit: Unit, options: Mapping[str, Any]) -> None:
    started.append(unit.record.key)
    raise PermanentError("bad file")


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    global running, most_at_once
    running = most_at_once = 0
    started.clear()
    yield
    while made:
        made.pop().close()


def routes(options: Mapping[str, Mapping[str, Any]] | None = None, **prefixes: str) -> list[dict[str, Any]]:
    """One route per prefix, named like the function of this module it calls (``options`` by name)."""
    return [
        {
            "name": function,
            "bucket": "lake",
            "prefix": prefix,
            "handler": {
                "type": "python",
                "function": f"{__name__}:{function}",
                "options": dict((options or {}).get(function, {})),
            },
        }
        for function, prefix in prefixes.items()
    ]


def shim(
    tmp_path: Path,
    *,
    lambda_: dict[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    **prefixes: str,
) -> Shim:
    return new(write_config(tmp_path / "watcher.yaml", routes(options, **prefixes), lambda_=lambda_ or {}))


def new(config: Path) -> Shim:
    made.append(make_shim(config))
    return made[-1]


def bodies(*keys: str) -> list[str]:
    return [s3_event("lake", key) for key in keys]


def run(shim: Shim, event: dict[str, Any], stop_in: float = 30.0) -> list[Any]:
    """Only the first phase of an invocation: records -> outcomes (nothing is done to SQS)."""

    async def go() -> list[Any]:
        records = records_of(event)
        return await shim._batch.process(records, stop_at=asyncio.get_running_loop().time() + stop_in)

    return shim.loop.run_until_complete(go())


def statuses(results: list[Any]) -> list[str | None]:
    return [None if r.outcome is None else ("gave_up" if r.gave_up else r.outcome.status) for r in results]


# ---- the records of an event ---------------------------------------------------------------------------------


def test_the_aws_documentation_sample_gives_its_two_records_with_what_dlq_and_backoff_need() -> None:
    first, second = records_of(load_fixture_json("lambda_sqs_event_aws_sample"))

    assert first.message_id == "059f36b4-87a3-44ab-83d2-661975830a7d"
    assert first.receipt_handle == "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a..."
    assert first.body == "Test message."
    assert (first.receive_count, first.sent_timestamp_ms) == (1, 1545082649183)
    assert first.source_arn == "arn:aws:sqs:us-east-2:123456789012:my-queue" and not first.fifo
    assert first.group_id is None
    # Lambda's lowercase form, turned into SendMessage's for the DLQ
    assert first.attributes == {"myAttribute": {"DataType": "String", "StringValue": "myValue"}}
    assert second.message_id == "2e1424d4-f796-459a-8184-9c92662be6da" and second.attributes == {}


def test_a_fifo_record_carries_its_message_group() -> None:
    (record,) = records_of(load_fixture_json(FIFO_SAMPLE))
    assert record.fifo and record.group_id == "1"
    assert record.source_arn.endswith(":fifo.fifo")


def test_a_binary_attribute_goes_back_to_sqs_as_bytes() -> None:
    event = load_fixture_json("lambda_sqs_event_aws_sample")
    event["Records"][0]["messageAttributes"]["blob"] = {
        "binaryValue": base64.b64encode(b"\x00\xffraw").decode(),
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Binary",
    }
    record = records_of(event)[0]
    assert record.attributes["blob"] == {"DataType": "Binary", "BinaryValue": b"\x00\xffraw"}


def test_the_replay_directives_are_read_from_the_lambda_form_of_the_attributes() -> None:
    event = batch(bodies("in/a.csv"))
    event["Records"][0]["messageAttributes"][ATTR_ROUTES] = {"stringValue": "b, c", "dataType": "String"}
    assert records_of(event)[0].directives.only_routes == frozenset({"b", "c"})


@pytest.mark.parametrize(
    "event",
    [
        load_fixture_json("s3_put_aws_sample"),  # S3 invoking the function directly: not an SQS batch
        {"Records": [{"eventSource": "aws:sqs", "body": "no id"}]},
        {"detail-type": "Object Created"},
        [],
    ],
)
def test_an_event_that_is_not_an_sqs_batch_is_refused(event: Any) -> None:
    with pytest.raises(NotAnSqsEvent):
        records_of(event)


# ---- the answer: batchItemFailures ---------------------------------------------------------------------------


def test_records_not_done_are_listed_in_the_batch_order() -> None:
    answer = batch_item_failures([("a", True), ("b", False), ("c", True), ("d", False)], fifo=False)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "d"}]}


def test_from_a_fifo_queue_the_first_record_not_done_and_every_record_after_it_are_listed() -> None:
    answer = batch_item_failures([("a", True), ("b", False), ("c", True), ("d", False)], fifo=True)
    assert answer == {"batchItemFailures": [{"itemIdentifier": i} for i in ("b", "c", "d")]}


def test_a_batch_done_lists_nothing() -> None:
    assert batch_item_failures([("a", True), ("b", True)], fifo=True) == {"batchItemFailures": []}


# ---- records -> outcomes -------------------------------------------------------------------------------------


def test_s3_sns_wrapped_and_test_event_bodies_succeed_and_nothing_is_listed(tmp_path: Path) -> None:
    any_bucket = {"name": "ok", "prefix": "photos/", "handler": {"type": "python", "function": f"{__name__}:ok"}}
    the_shim = new(write_config(tmp_path / "watcher.yaml", [any_bucket]))
    # The S3 sample and the same notification wrapped by SNS: one key, photos/...; and S3's test event.
    event = batch([load_fixture("s3_put_aws_sample"), load_fixture("sns_s3_put"), load_fixture("s3_test_event")])

    assert failures(the_shim.invoke(event, Context())) == []
    assert started == ["photos/2026/Happy Face +1 café.jpg", "photos/2026/Happy Face +1 café.jpg"]


def test_each_record_gets_its_outcome_in_the_batch_order(tmp_path: Path) -> None:
    the_shim = shim(tmp_path, ok="ok/", retry="retry/", permanent="bad/")
    event = batch([*bodies("ok/1", "bad/2", "retry/3", "ok/4", "nothing/5"), "not a notification"])

    results = run(the_shim, event)

    assert [r.record.message_id for r in results] == ids(event)
    assert statuses(results) == ["ok", "permanent", "retry", "ok", "ok", "permanent"]
    assert results[1].outcome.reason == "route permanent: bad file"
    assert results[5].outcome.reason.startswith("unparseable message")


def test_records_run_concurrently_up_to_the_configured_limit(tmp_path: Path) -> None:
    the_shim = shim(tmp_path, lambda_={"max_concurrency": 3}, slow="in/")
    event = batch(bodies(*(f"in/{i}" for i in range(7))))

    began = time.monotonic()
    assert failures(the_shim.invoke(event, Context())) == []
    took = time.monotonic() - began

    assert most_at_once == 3
    assert 0.6 <= took < 1.5  # three waves of 0.2 s, not seven
    assert sorted(started) == [f"in/{i}" for i in range(7)]


def test_a_fifo_batch_runs_one_record_at_a_time_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    the_shim = shim(tmp_path, lambda_={"max_concurrency": 10}, slow="in/", retry="retry/")
    event = batch(bodies("in/1", "in/2", "retry/3", "in/4", "in/5"), sample=FIFO_SAMPLE)

    results = run(the_shim, event)

    assert statuses(results) == ["ok", "ok", "retry", None, None]
    assert most_at_once == 1
    assert started == ["in/1", "in/2", "retry/3"]  # in order, nothing after the failure
    done = [(r.record.message_id, r.outcome is not None and r.outcome.status == "ok") for r in results]
    assert failures(batch_item_failures(done, fifo=True)) == ids(event)[2:]


def test_a_fifo_batch_stops_at_a_permanent_failure_too(tmp_path: Path) -> None:
    the_shim = shim(tmp_path, ok="in/", permanent="bad/")
    event = batch(bodies("in/1", "bad/2", "in/3"), sample=FIFO_SAMPLE)
    assert statuses(run(the_shim, event)) == ["ok", "permanent", None]


def test_no_record_starts_after_the_stop_and_records_running_then_are_given_up(tmp_path: Path) -> None:
    the_shim = shim(tmp_path, lambda_={"max_concurrency": 2}, options={"slow": {"seconds": 30}}, slow="in/")
    event = batch(bodies("in/1", "in/2", "in/3", "in/4"))

    began = time.monotonic()
    results = run(the_shim, event, stop_in=0.3)
    took = time.monotonic() - began

    assert took < 2  # not the 30 s the handler wanted
    assert statuses(results) == ["gave_up", "gave_up", None, None]
    assert results[0].outcome.status == "retry"  # a given-up record comes back
    assert started == ["in/1", "in/2"]
    assert running == 0  # the units were cancelled, not left running


def test_a_given_up_unit_gives_its_idempotency_claim_back(tmp_path: Path) -> None:
    claims = {"backend": "sqlite", "path": str(tmp_path / "claims.db")}
    stuck = new(write_config(tmp_path / "a.yaml", routes({"slow": {"seconds": 30}}, slow="in/"), idempotency=claims))
    event = batch(bodies("in/1"))

    assert statuses(run(stuck, event, stop_in=0.3)) == ["gave_up"]

    # The claim was released: the next delivery runs the unit (it would be "in progress elsewhere" until the
    # lease ran out otherwise).
    quick = new(write_config(tmp_path / "b.yaml", routes({"slow": {"seconds": 0}}, slow="in/"), idempotency=claims))
    assert statuses(run(quick, event)) == ["ok"]
    assert started == ["in/1", "in/1"]


def test_a_claim_lasts_at_least_as_long_as_the_invocation_that_took_it(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "watcher.yaml",
        routes(ok="in/"),
        queue={"visibility_timeout": 30},  # the default lease: 30 s
        idempotency={"backend": "sqlite", "path": str(tmp_path / "claims.db")},
    )
    the_shim = new(config)
    store = the_shim.app.idempotency
    assert store is not None and store.lease_seconds == 30

    the_shim.invoke(batch(bodies("in/1")), Context(seconds=600))
    assert store.lease_seconds >= 600
    the_shim.invoke(batch(bodies("in/2")), Context(seconds=10))
    assert store.lease_seconds == 30  # never shorter than configured


def test_when_sqs_cannot_be_reached_the_failed_records_stay_listed_and_the_answer_comes_in_time(
    tmp_path: Path,
) -> None:
    closed = free_port()  # nothing listens there: a real connection refused, for every SQS call
    config = write_config(
        tmp_path / "watcher.yaml",
        routes(ok="ok/", retry="retry/", permanent="bad/"),
        aws={"endpoint_url": f"http://127.0.0.1:{closed}", "region": "us-east-1"},
    )
    the_shim = new(config)
    event = batch(bodies("ok/1", "bad/2", "retry/3"))

    began = time.monotonic()
    response = the_shim.invoke(event, Context(1.5))

    assert time.monotonic() - began < 1.5
    assert failures(response) == ids(event)[1:]  # not dead-lettered, so not deleted either
