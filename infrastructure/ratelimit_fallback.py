"""The rate limits while Redis is down: counted in this process instead of refused or waved through.

Failing closed would refuse every `generate`, login and upload for as long as Redis is down;
failing open would lift the login, register and refresh throttles, the ones an attacker
leans on, exactly when nobody watches. Counting in process keeps every limit per replica:
during the outage a client gets at most the limit times the number of API replicas in a
window. When Redis is back its windows hold what was counted before the outage (or nothing,
if it restarted empty), and the windows kept in process are no longer asked: a window that
spans both can let (replicas + 1) times the limit through (docs/deploy.md, docs/security.md).
Each hit counted in process adds to the `genhub_rate_limit_fallbacks_total` metric.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from domain.ports import RateBucket, RateLimiter
from infrastructure.metrics import RATE_LIMIT_FALLBACKS
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
        RATE_LIMIT_FALLBACKS.inc()
        return await self._fallback.hit_all(buckets)
