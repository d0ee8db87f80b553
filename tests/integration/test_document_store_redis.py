"""The Redis persisted-query store on a real Redis: at most PERSISTED_QUERY_CACHE_SIZE documents across
every replica, whatever the concurrency of registrations; the least recently used leave first."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from infrastructure.document_stores import RedisDocumentStore

pytestmark = pytest.mark.redis

CAP = 20


@pytest.fixture
async def redis(clean_redis: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(clean_redis)
    try:
        yield client
    finally:
        await client.aclose()


def replicas(redis: Redis, prefix: str, count: int) -> list[RedisDocumentStore]:
    """Stores as several processes would have them: one client each, one shared Redis."""
    return [RedisDocumentStore(redis, ttl_seconds=3600, max_entries=CAP, prefix=prefix) for _ in range(count)]


async def stored(redis: Redis, prefix: str) -> int:
    return len([k async for k in redis.scan_iter(match=f"{prefix}*", count=1000) if not k.endswith(b"-index")])


async def test_the_count_never_exceeds_the_cap_under_concurrent_registrations(redis: Redis) -> None:
    # given four replicas sharing one Redis
    prefix = f"test:apq:{uuid.uuid4().hex[:8]}:"
    stores = replicas(redis, prefix, 4)
    peak = 0

    async def watch(stop: asyncio.Event) -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, await redis.zcard(stores[0].index), await stored(redis, prefix))
            await asyncio.sleep(0)

    # when they register many documents at once
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(stop))
    await asyncio.gather(*(stores[i % 4].put(f"s:{i:04d}", f"query Q{i} {{ me {{ id }} }}") for i in range(300)))
    stop.set()
    await watcher
    # then no more than the cap were ever kept, and exactly the cap are kept now
    assert peak <= CAP
    assert await stored(redis, prefix) == CAP == await redis.zcard(stores[0].index)


async def test_the_least_recently_used_leave_first(redis: Redis) -> None:
    prefix = f"test:apq:{uuid.uuid4().hex[:8]}:"
    (store,) = replicas(redis, prefix, 1)
    for i in range(CAP):
        await store.put(f"k{i}", f"text {i}")
    # the first one is read (so it is recently used), then one more is registered
    assert await store.get("k0") == "text 0"
    await store.put("new", "text new")
    assert await store.get("k0") == "text 0"
    assert await store.get("k1") is None  # the oldest unused one left
    assert await store.get("new") == "text new"
    assert await stored(redis, prefix) == CAP
