"""What a backend of the idempotency store does: four conditional writes on one record per
``(route, request_id)``. Calls are blocking; watcher.idempotency.store runs them off the event loop.

A record is ``in_progress`` (a worker holds it until ``lease_until``) or ``completed`` (remembered
until ``expires_at``). ``claim`` succeeds when there is no record, when it expired, or when an
in-progress lease expired (a worker died mid-unit); with ``force``, a completed record is taken over
too (a deliberate re-run), never a live lease. Completing, releasing and renewing are conditional on
still being the owner: a worker whose lease expired cannot overwrite the record of the one that took
over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

ClaimState = Literal["acquired", "completed", "in_progress"]
IN_PROGRESS = "in_progress"
COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    route: str
    request_id: str
    owner: str  # a token unique to this attempt
    now: float  # wall-clock seconds (leases are compared across hosts)
    lease_until: float
    expires_at: float
    subject: str = ""  # what the unit is about (s3://bucket/key), for whoever reads the store
    force: bool = False


@dataclass(frozen=True, slots=True)
class ClaimResult:
    state: ClaimState
    owner: str  # ours when acquired, else the holder's
    lease_until: float | None = None
    completed_at: float | None = None


class IdempotencyBackend(Protocol):
    def claim(self, request: ClaimRequest) -> ClaimResult: ...

    def complete(self, route: str, request_id: str, owner: str, now: float, expires_at: float) -> bool:
        """Mark our claim completed; False when it is no longer ours."""
        ...

    def release(self, route: str, request_id: str, owner: str) -> bool:
        """Give our claim up (the unit failed: a retry may run it); False when no longer ours."""
        ...

    def renew(self, route: str, request_id: str, owner: str, lease_until: float) -> bool:
        """Extend our lease; False when the claim is no longer ours."""
        ...

    def forget_expired(self, now: float) -> int:
        """Delete expired records where the store does not do it itself; return how many."""
        ...

    def close(self) -> None: ...
