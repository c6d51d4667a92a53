"""Retry delay of a failed message, from how often SQS has delivered it."""

from __future__ import annotations

import random

MAX_VISIBILITY = 43200  # SQS limit: 12 hours


def retry_delay(receive_count: int, initial: float, maximum: float, rng: random.Random | None = None) -> int:
    """Exponential backoff with "equal jitter": half fixed, half random, so that retries of a batch
    that failed together spread out while each still waits at least half its step.

    ``receive_count`` 1 -> about ``initial``, 2 -> 2x, 3 -> 4x ... capped at ``maximum``.
    """
    uniform = rng.uniform if rng else random.uniform
    exponent = max(0, receive_count - 1)
    step = min(maximum, initial * (2 ** min(exponent, 30)))
    delay = step / 2 + uniform(0, step / 2)
    return int(min(MAX_VISIBILITY, max(0, round(delay))))
