"""Retry rule for transient provider failures: exponential backoff with jitter, capped."""

from __future__ import annotations


def backoff_seconds(attempt: int, *, base: float, cap: float, jitter: float, retry_after: float | None = None) -> float:
    """Delay before retry number `attempt` (1 = the first retry).

    "Equal jitter": half of the exponential step is fixed, half random (`jitter` in
    [0, 1)), so retries spread out without collapsing to zero. A provider's own
    Retry-After is honoured as a floor; `cap` bounds the result either way.
    """
    step = min(cap, base * 2.0 ** max(0, attempt - 1))
    delay = step / 2 + step / 2 * min(max(jitter, 0.0), 1.0)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return max(0.0, min(cap, delay))
