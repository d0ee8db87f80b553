"""enforce (domain/use_cases/rate_limits.py) with the fake limiter: one hit counts in every bucket of a request, or in none."""

from __future__ import annotations

import pytest

from domain.errors import RateLimited
from domain.ports import RateBucket
from domain.use_cases.rate_limits import RateRule, enforce
from tests.unit.fakes import FakeClock, FakeRateLimiter

USER_BUCKET = "generate:user-1"
PER_USER = RateRule(limit=2, window_seconds=60)
BY_ADDRESS = RateBucket("generate:addr:198.51.100.7", limit=1, window_seconds=10)


@pytest.fixture
def limiter() -> FakeRateLimiter:
    return FakeRateLimiter(FakeClock())


async def test_no_limiter_or_no_rule_counts_nothing(limiter: FakeRateLimiter) -> None:
    await enforce(None, bucket=USER_BUCKET, rule=PER_USER)
    await enforce(limiter, bucket=USER_BUCKET, rule=None)
    assert dict(limiter.hits) == {}


async def test_the_rule_allows_its_limit_per_window(limiter: FakeRateLimiter) -> None:
    for _ in range(PER_USER.limit):
        await enforce(limiter, bucket=USER_BUCKET, rule=PER_USER)
    with pytest.raises(RateLimited) as limited:
        await enforce(limiter, bucket=USER_BUCKET, rule=PER_USER)
    assert limited.value.retry_after_seconds == PER_USER.window_seconds
    limiter.clock.advance(PER_USER.window_seconds)
    await enforce(limiter, bucket=USER_BUCKET, rule=PER_USER)


async def test_a_full_bucket_of_the_caller_refuses_and_counts_in_no_other(limiter: FakeRateLimiter) -> None:
    # given the address bucket used up
    await enforce(limiter, bucket=USER_BUCKET, rule=None, also=[BY_ADDRESS])
    # when the user (with room in their own bucket) calls, then the longest wait is reported
    with pytest.raises(RateLimited) as limited:
        await enforce(limiter, bucket=USER_BUCKET, rule=PER_USER, also=[BY_ADDRESS])
    assert limited.value.retry_after_seconds == BY_ADDRESS.window_seconds
    assert limiter.hits[USER_BUCKET] == [] and len(limiter.hits[BY_ADDRESS.name]) == 1
