"""The transport's own rate limits (per client address, per named account), counted in one hit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.ports import RateBucket, RateLimiter
from domain.use_cases.rate_limits import enforce


@dataclass(frozen=True, slots=True)
class Throttle:
    limiter: RateLimiter

    async def hit(self, buckets: Sequence[RateBucket]) -> None:
        """Count one hit in every bucket, or in none when any is full: then RateLimited (with the wait)."""
        await enforce(self.limiter, bucket="", rule=None, also=buckets)
