"""Fixtures for the provider and rate-limiter tests: HTTP client, Redis, a controllable clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.fixtures.clock import FakeClock

REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as client:
        yield client


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    """Redis db 14; skipped when unreachable, except on CI (CI=true) where that is a failure."""
    client = Redis.from_url(REDIS_TEST_URL)
    try:
        await client.ping()
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        await client.aclose()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis at {REDIS_TEST_URL} is required on CI: {exc}")
        pytest.skip(f"Redis at {REDIS_TEST_URL} is not reachable: {exc}")
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: Redis) -> AsyncIterator[str]:
    """A key prefix unique to the test; its keys are deleted afterwards."""
    prefix = f"test:rl:{uuid.uuid4().hex}:"
    yield prefix
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis_client.delete(*keys)
