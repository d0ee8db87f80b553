"""Per-user rate limits of the use cases, counted together with the caller's own buckets.

A use case names its per-user bucket (`generate:{user_id}`, `upload:{user_id}`); the
transport may add buckets of its own (per client address) so that every limit of one
request is counted in one atomic hit: all of them or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.errors import RateLimited
from domain.ports import RateBucket, RateLimiter


@dataclass(frozen=True, slots=True)
class RateRule:
    limit: int
    window_seconds: int


async def enforce(
    limiter: RateLimiter | None,
    *,
    bucket: str,
    rule: RateRule | None,
    also: Sequence[RateBucket] = (),
) -> None:
    """Count one hit in `bucket` (under `rule`) and in every bucket of `also`; RateLimited when any is full."""
    if limiter is None:
        return
    buckets = [*also]
    if rule is not None:
        buckets.append(RateBucket(bucket, rule.limit, rule.window_seconds))
    if not buckets:
        return
    wait = await limiter.hit_all(buckets)
    if wait:
        raise RateLimited(wait)
