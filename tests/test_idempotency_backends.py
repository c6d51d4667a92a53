"""The idempotency store's four conditional writes, the same on both backends: SQLite, and a real
DynamoDB Local (the shared store's stand-in: same API, same conditions, TTL included)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.idempotency import BACKENDS, idempotency_section, open_backend
from watcher.idempotency.backend import ClaimRequest, IdempotencyBackend

ROUTE, ID = "video", "0123456789abcdef0123456789abcdef"
LEASE, TTL = 60.0, 3600.0


@pytest.fixture(params=BACKENDS)
def section(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    endpoint = request.getfixturevalue("dynamodb_endpoint") if request.param == "dynamodb" else None
    return idempotency_section(str(request.param), tmp_path, endpoint)


@pytest.fixture
def backend(section: dict[str, Any]) -> Iterator[IdempotencyBackend]:
    store = open_backend(section)
    yield store
    store.close()


def claim(backend: IdempotencyBackend, owner: str, now: float | None = None, **changes: Any) -> Any:
    now = time.time() if now is None else now
    fields: dict[str, Any] = {"lease_until": now + LEASE, "expires_at": now + TTL, **changes}
    return backend.claim(ClaimRequest(ROUTE, ID, owner, now, subject="s3://b/k", **fields))


def test_the_first_claim_is_taken_and_a_second_sees_it_in_progress(backend: IdempotencyBackend) -> None:
    first = claim(backend, "a")
    assert (first.state, first.owner) == ("acquired", "a")
    second = claim(backend, "b")
    assert (second.state, second.owner) == ("in_progress", "a")
    assert second.lease_until == pytest.approx(first.lease_until, abs=0.01)


def test_a_completed_unit_is_a_duplicate_until_it_expires(backend: IdempotencyBackend) -> None:
    claim(backend, "a")
    now = time.time()
    assert backend.complete(ROUTE, ID, "a", now, now + TTL)
    again = claim(backend, "b")
    assert (again.state, again.owner) == ("completed", "a")
    assert again.completed_at == pytest.approx(now, abs=0.01)
    # Once expired (DynamoDB's TTL deletes within days: the condition must not wait for it).
    assert claim(backend, "c", now=now + TTL + 1).state == "acquired"


def test_a_released_claim_can_be_taken_again(backend: IdempotencyBackend) -> None:
    claim(backend, "a")
    assert backend.release(ROUTE, ID, "a")
    assert claim(backend, "b").state == "acquired"


def test_an_expired_lease_is_taken_over_and_the_old_owner_can_no_longer_write(backend: IdempotencyBackend) -> None:
    now = time.time()
    claim(backend, "dead", now=now - 2 * LEASE)  # its lease ran out a minute ago
    assert claim(backend, "alive", now=now).state == "acquired"
    assert not backend.complete(ROUTE, ID, "dead", now, now + TTL)
    assert not backend.renew(ROUTE, ID, "dead", now + LEASE)
    assert not backend.release(ROUTE, ID, "dead")
    assert claim(backend, "third").owner == "alive"  # the takeover's record is intact


def test_renewing_keeps_a_lease_that_would_have_expired(backend: IdempotencyBackend) -> None:
    now = time.time()
    claim(backend, "a", now=now - LEASE + 1)  # expires in a second
    assert backend.renew(ROUTE, ID, "a", now + LEASE)
    assert claim(backend, "b", now=now + 2).state == "in_progress"


def test_force_takes_a_completed_unit_but_never_a_live_lease(backend: IdempotencyBackend) -> None:
    claim(backend, "a")
    assert claim(backend, "b", force=True).state == "in_progress"
    now = time.time()
    backend.complete(ROUTE, ID, "a", now, now + TTL)
    assert claim(backend, "c").state == "completed"
    assert claim(backend, "d", force=True).state == "acquired"


def test_of_eight_workers_racing_for_one_unit_exactly_one_wins(section: dict[str, Any]) -> None:
    workers = [open_backend(section) for _ in range(8)]  # a connection / client each, as processes have
    try:
        for round_ in range(10):
            assert sorted(race(workers, f"{ID[:-2]}{round_:02d}")) == ["acquired"] + ["in_progress"] * 7
    finally:
        for worker in workers:
            worker.close()


def race(workers: list[IdempotencyBackend], request_id: str) -> list[str]:
    """Every worker claims the same unit at the same instant (one thread each); their answers."""
    start = threading.Barrier(len(workers))
    results: list[str] = []

    def claim_it(worker: IdempotencyBackend, owner: str) -> None:
        start.wait()
        now = time.time()
        results.append(worker.claim(ClaimRequest(ROUTE, request_id, owner, now, now + LEASE, now + TTL)).state)

    threads = [threading.Thread(target=claim_it, args=(w, f"t{i}")) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
