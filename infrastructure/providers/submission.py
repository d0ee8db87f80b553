"""What every provider adapter does alike before it submits a job: wait for a slot, build the input."""

from __future__ import annotations

from typing import Any

from domain.ports import LOCAL_RATE_LIMITED, ProviderError, ProviderJob, RateLimiter
from infrastructure.ratelimit import RateLimitTimeout, acquire


async def wait_for_submit_slot(
    limiter: RateLimiter, bucket: str, *, limit: int, window_seconds: int, max_wait: float
) -> None:
    """Wait for the provider's own submit rate; LOCAL_RATE_LIMITED (retryable) when waiting would be too long.

    The provider was not asked: routing skips the route without counting it against the provider's circuit.
    """
    try:
        await acquire(limiter, bucket, limit=limit, window_seconds=window_seconds, max_wait=max_wait)
    except RateLimitTimeout as exc:
        raise ProviderError(
            LOCAL_RATE_LIMITED, str(exc), retryable=True, retry_after=exc.retry_after, nothing_started=True
        ) from exc


def job_input(job: ProviderJob) -> dict[str, Any]:
    """The job's params with its prompt; keys starting with "_" are genhub's own bookkeeping (e.g. the attempt)."""
    arguments: dict[str, Any] = {key: value for key, value in job.params.items() if not key.startswith("_")}
    arguments["prompt"] = job.prompt
    return arguments
