"""Sliding-window rate limiters (memory and Redis), and submits waiting for a provider's rate through them."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from domain.generations import Generation, GenerationStatus
from domain.ports import ProviderJob, RateBucket
from domain.provider_health import ProviderLimit
from domain.use_cases.routed_submission import RoutedSubmit, submit_routes
from infrastructure.ratelimit import MemoryRateLimiter, RedisRateLimiter
from tests.fixtures.clock import FakeClock
from tests.fixtures.waiting import eventually
from tests.integration.providers.conftest import REDIS_TEST_URL
from tests.unit.processing_fakes import Env, Providers, Slow

# ------------------------------------------------------------------ memory


async def test_memory_allows_up_to_the_limit_then_says_how_long_to_wait(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    results = [await limiter.hit("b", limit=3, window_seconds=10) for _ in range(3)]
    clock.advance(4.2)

    assert results == [0, 0, 0]
    assert await limiter.hit("b", limit=3, window_seconds=10) == 6  # ceil(10 - 4.2)


async def test_memory_window_slides(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    assert await limiter.hit("b", limit=2, window_seconds=10) == 0
    clock.advance(6)
    assert await limiter.hit("b", limit=2, window_seconds=10) == 0
    assert await limiter.hit("b", limit=2, window_seconds=10) == 4

    clock.advance(4)  # the first hit leaves the window, the second stays
    assert await limiter.hit("b", limit=2, window_seconds=10) == 0
    assert await limiter.hit("b", limit=2, window_seconds=10) == 6


async def test_memory_rejected_hits_are_not_counted(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    await limiter.hit("b", limit=1, window_seconds=5)
    for _ in range(10):
        assert await limiter.hit("b", limit=1, window_seconds=5) >= 1

    clock.advance(5)
    assert await limiter.hit("b", limit=1, window_seconds=5) == 0


async def test_memory_buckets_are_independent(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    assert await limiter.hit("alice", limit=1, window_seconds=60) == 0
    assert await limiter.hit("alice", limit=1, window_seconds=60) == 60
    assert await limiter.hit("bob", limit=1, window_seconds=60) == 0


async def test_memory_retry_is_at_least_one_second(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    await limiter.hit("b", limit=1, window_seconds=1)
    clock.advance(0.999)

    assert await limiter.hit("b", limit=1, window_seconds=1) == 1


async def test_memory_is_exact_under_concurrent_coroutines() -> None:
    limiter = MemoryRateLimiter()
    results = await asyncio.gather(*(limiter.hit("b", limit=10, window_seconds=60) for _ in range(100)))

    assert results.count(0) == 10


async def test_memory_hit_all_counts_in_every_bucket_or_in_none(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    user = RateBucket("user", 1, 60)
    address = RateBucket("ip", 3, 10)
    assert await limiter.hit_all([address, user]) == 0

    # The user bucket is full: the address bucket must not be charged for the refusal.
    assert await limiter.hit_all([address, user]) == 60
    assert await limiter.hit_all([address]) == 0
    assert await limiter.hit_all([address]) == 0
    assert await limiter.hit_all([address]) == 10  # 3 hits: the first call's and two alone


async def test_memory_hit_all_returns_the_longest_wait(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    await limiter.hit_all([RateBucket("a", 1, 5), RateBucket("b", 1, 30)])
    clock.advance(1)

    assert await limiter.hit_all([RateBucket("a", 1, 5), RateBucket("b", 1, 30)]) == 29


# ------------------------------------------------------------------ redis

LimiterFactory = Callable[[Redis], RedisRateLimiter]


@pytest.fixture
async def redis_limiter(redis_prefix: str) -> AsyncIterator[LimiterFactory]:
    """RedisRateLimiter on a given client (with its own pipeline connection, closed afterwards)."""
    made: list[RedisRateLimiter] = []

    def make(client: Redis) -> RedisRateLimiter:
        made.append(RedisRateLimiter(client, prefix=redis_prefix))
        return made[-1]

    yield make
    for limiter in made:
        await limiter.aclose()


@pytest.mark.redis
async def test_redis_hit_all_counts_in_every_bucket_or_in_none(
    redis_client: Redis, redis_prefix: str, redis_limiter: LimiterFactory
) -> None:
    limiter = redis_limiter(redis_client)
    user = RateBucket("user", 1, 60)
    address = RateBucket("ip", 3, 30)
    assert await limiter.hit_all([address, user]) == 0

    wait = await limiter.hit_all([address, user])

    assert 59 <= wait <= 60  # the longer of the two waits: the user's
    assert await redis_client.zcard(f"{redis_prefix}ip") == 1  # the refusal was not counted
    assert await redis_client.zcard(f"{redis_prefix}user") == 1
    assert 0 < await redis_client.pttl(f"{redis_prefix}ip") <= 30_000


@pytest.mark.redis
async def test_redis_hit_all_is_exact_for_concurrent_requests_sharing_a_bucket(
    redis_client: Redis, redis_prefix: str, redis_limiter: LimiterFactory
) -> None:
    # Ten users behind one address: the address allows 12, each user 2 (20 in all).
    limiter = redis_limiter(redis_client)
    calls = [[RateBucket("ip", 12, 60), RateBucket(f"user{i % 10}", 2, 60)] for i in range(40)]

    results = await asyncio.gather(*(limiter.hit_all(buckets) for buckets in calls))

    assert results.count(0) == 12
    assert await redis_client.zcard(f"{redis_prefix}ip") == 12
    per_user = [await redis_client.zcard(f"{redis_prefix}user{i}") for i in range(10)]
    assert sum(per_user) == 12 and max(per_user) <= 2


@pytest.mark.redis
async def test_redis_allows_up_to_the_limit_then_says_how_long_to_wait(
    redis_client: Redis, redis_prefix: str, redis_limiter: LimiterFactory
) -> None:
    limiter = redis_limiter(redis_client)
    results = [await limiter.hit("b", limit=3, window_seconds=30) for _ in range(4)]

    assert results[:3] == [0, 0, 0]
    assert 29 <= results[3] <= 30
    ttl_ms = await redis_client.pttl(f"{redis_prefix}b")
    assert 0 < ttl_ms <= 30_000


async def bucket_gone(redis: Redis, key: str) -> bool:
    """Whether Redis has expired a bucket's key (it lives one window past its last counted hit)."""
    return not await redis.exists(key)


@pytest.mark.redis
async def test_redis_window_slides(redis_client: Redis, redis_prefix: str, redis_limiter: LimiterFactory) -> None:
    limiter = redis_limiter(redis_client)
    assert await limiter.hit("b", limit=2, window_seconds=1) == 0
    assert await limiter.hit("b", limit=2, window_seconds=1) == 0
    assert await limiter.hit("b", limit=2, window_seconds=1) == 1

    # The window runs on Redis's own clock (TIME inside the script), which a test cannot move:
    # wait until Redis itself has let the bucket expire, one window after the last hit.
    await eventually(lambda: bucket_gone(redis_client, f"{redis_prefix}b"), what="the 1 s window to pass", timeout=5)
    assert await limiter.hit("b", limit=2, window_seconds=1) == 0


@pytest.mark.redis
async def test_redis_buckets_are_independent_and_rejections_not_counted(
    redis_client: Redis, redis_prefix: str, redis_limiter: LimiterFactory
) -> None:
    limiter = redis_limiter(redis_client)
    assert await limiter.hit("alice", limit=1, window_seconds=60) == 0
    for _ in range(5):
        assert await limiter.hit("alice", limit=1, window_seconds=60) >= 59
    assert await limiter.hit("bob", limit=1, window_seconds=60) == 0

    assert await redis_client.zcard(f"{redis_prefix}alice") == 1


@pytest.mark.redis
async def test_redis_is_exact_across_independent_clients(redis_client: Redis, redis_limiter: LimiterFactory) -> None:
    # Two connections stand in for two processes sharing one Redis.
    other_client = Redis.from_url(REDIS_TEST_URL)
    try:
        limiters = [
            redis_limiter(redis_client),
            redis_limiter(other_client),
        ]
        results = await asyncio.gather(*(limiters[i % 2].hit("shared", limit=10, window_seconds=60) for i in range(60)))
    finally:
        await other_client.aclose()

    assert results.count(0) == 10
    assert all(1 <= wait <= 60 for wait in results if wait)


# ------------------------------------------------------------------ waiting for a provider's submit rate


@pytest.mark.redis
async def test_submits_waiting_for_a_providers_rate_on_redis_stay_under_it(
    redis_client: Redis, redis_limiter: LimiterFactory
) -> None:
    # given ten generations of a one-route model whose provider takes four submits a second, and two "workers"
    env = Env()
    provider = Slow("first", delay=0.0)
    arrivals: list[float] = []
    original = provider.submit

    async def timed(job: ProviderJob) -> str:
        arrivals.append(time.monotonic())
        return await original(job)

    provider.submit = timed  # type: ignore[method-assign]
    limiters = [redis_limiter(redis_client), redis_limiter(redis_client)]
    policy = dataclasses.replace(
        env.policy, provider_limits={"first": ProviderLimit(rate=4, window_seconds=1)}, provider_rate_wait_seconds=10
    )
    owner = env.fakes.user(balance=1000)
    model = env.fakes.model(provider="first")
    generations = [env.fakes.generation(owner, model, GenerationStatus.SUBMITTING) for _ in range(10)]

    async def submit(i: int) -> RoutedSubmit:
        ports = dataclasses.replace(env.ports, providers=Providers(provider), limiter=limiters[i % 2])
        return await submit_routes(ports, policy, generations[i], model, 1, lambda r, p: job_of(generations[i]))

    # when they submit at once
    done = await asyncio.gather(*(submit(i) for i in range(10)))
    # then every one waited for its turn and was taken, never more than four in a second
    assert all(r.external_id for r in done)
    arrivals.sort()
    for i, start in enumerate(arrivals):
        assert sum(1 for t in arrivals[i:] if t - start < 0.95) <= 4


def job_of(generation: Generation) -> ProviderJob:
    return ProviderJob(generation_id=generation.id, provider_model="m", prompt=generation.prompt, params={})


@pytest.mark.redis
async def test_redis_reloads_its_script_after_redis_forgot_it(
    redis_client: Redis, redis_limiter: LimiterFactory
) -> None:
    # given a limiter that has run its script, and a Redis that then lost its scripts (restart, SCRIPT FLUSH)
    limiter = redis_limiter(redis_client)
    assert await limiter.hit("b", limit=2, window_seconds=60) == 0
    await redis_client.script_flush()
    # when the next hits come, alone and several at once
    alone = await limiter.hit("b", limit=2, window_seconds=60)
    await redis_client.script_flush()
    together = await asyncio.gather(*(limiter.hit("c", limit=1, window_seconds=60) for _ in range(3)))
    # then they are counted as usual
    assert alone == 0
    assert sorted(together)[0] == 0 and all(w >= 59 for w in sorted(together)[1:])
