"""The rate limits while Redis is down: counted in this process instead of refused or waved through.

Failing closed would refuse every `generate`, login and upload for as long as Redis is down;
failing open would lift the login, register and refresh throttles, the ones an attacker
leans on, exactly when nobody watches. Counting in process keeps every limit per replica:
during the outage a client gets at most the limit times the number of API replicas, and the
Redis windows start empty again when it is back (docs/deploy.md, docs/security.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from domain.ports import RateBucket, RateLimiter
from infrastructure.outages import REDIS, as_unavailable
from infrastructure.ratelimit import MemoryRateLimiter

log = logging.getLogger("genhub.ratelimit")

#: After a failure, Redis is left alone this long: a hit does not wait for a connect timeout each time.
RETRY_REDIS_SECONDS = 1.0


class FallbackRateLimiter:
    """`primary` (Redis) while it answers; `fallback` (in process) while it cannot be reached."""

    def __init__(
        self,
        primary: RateLimiter,
        fallback: RateLimiter | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_after: float = RETRY_REDIS_SECONDS,
    ) -> None:
        self._primary = primary
        self._fallback = fallback or MemoryRateLimiter()
        self._clock = clock
        self._retry_after = retry_after
        self._down_until = 0.0
        self.fallbacks = 0  # hits counted in process since start

    @property
    def primary(self) -> RateLimiter:
        return self._primary

    async def hit(self, bucket: str, *, limit: int, window_seconds: int) -> int:
        return await self.hit_all([RateBucket(bucket, limit, window_seconds)])

    async def hit_all(self, buckets: Sequence[RateBucket]) -> int:
        if self._clock() >= self._down_until:
            try:
                wait = await self._primary.hit_all(buckets)
            except Exception as exc:
                if as_unavailable(exc, REDIS) is None:
                    raise
                if self._down_until == 0.0:
                    log.warning("rate limits counted in this process while Redis is unavailable: %s", exc)
                self._down_until = self._clock() + self._retry_after
            else:
                if self._down_until:
                    log.info("rate limits counted in Redis again")
                    self._down_until = 0.0
                return wait
        self.fallbacks += 1
        return await self._fallback.hit_all(buckets)
