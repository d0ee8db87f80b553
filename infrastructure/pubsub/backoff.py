"""Capped, jittered exponential backoff shared by the fan-out reconnect loops."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): exponential, capped, jittered.

    "Equal jitter": half of ``min(cap, base * 2**(attempt-1))`` is fixed and the other half
    random, so replicas that lost Redis together do not all reconnect in lockstep.
    """
    ceiling = min(cap, base * 2.0 ** max(0, min(attempt, 64) - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)
