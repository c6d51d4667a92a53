"""Exponential backoff with "equal jitter", the one formula every retry in watcher uses: SQS
redeliveries (the visibility set after a retryable failure) and the workflow handler's HTTP retries."""

from __future__ import annotations

import random


def equal_jitter(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Half the step fixed, half random, so that retries of a batch that failed together spread out
    while each still waits at least half its step.

    ``attempt`` 1 -> about ``initial``, 2 -> 2x, 3 -> 4x ... the step capped at ``maximum``.
    """
    uniform = rng.uniform if rng else random.uniform
    exponent = max(0, attempt - 1)
    step = min(maximum, initial * (2 ** min(exponent, 30)))
    return float(step / 2 + uniform(0, step / 2))
