"""Redis that accepts connections and never answers (packets dropped on the way back): every
command client gives up within its timeout, so the rate limits fall back in about a second
instead of waiting for the operating system's TCP timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from domain.ports import RateBucket
from infrastructure.queue import StreamBroker, build_broker
from infrastructure.ratelimit import MemoryRateLimiter, RedisRateLimiter
from infrastructure.ratelimit_fallback import FallbackRateLimiter
from infrastructure.redis_timeouts import command_client, command_pipeline
from infrastructure.settings import Settings

TIMEOUT = 0.3


class CountingFallback(MemoryRateLimiter):
    """The in-process limiter, counting the hits it took over."""

    def __init__(self) -> None:
        super().__init__()
        self.hits = 0

    async def hit_all(self, buckets: Sequence[RateBucket]) -> int:
        self.hits += 1
        return await super().hit_all(buckets)


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A listening socket that accepts every connection and never replies."""
    accepted: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_the_rate_limits_fall_back_within_the_command_timeout(silent_redis: str) -> None:
    # given the process's Redis clients built from settings naming a Redis that never answers
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        redis_url=silent_redis,
        redis_connect_timeout_seconds=TIMEOUT,
        redis_command_timeout_seconds=TIMEOUT,
    )
    redis = command_client(settings)
    pipeline = command_pipeline(settings, redis)
    broker = build_broker(settings)
    assert isinstance(broker, StreamBroker)
    primaries = {
        # the API's: hits share the task queue's pipeline (infrastructure/container.py)
        "queue pipeline": RedisRateLimiter(redis, pipeline=broker.pipeline),
        "command pipeline": RedisRateLimiter(redis, pipeline=pipeline),
    }
    try:
        for name, primary in primaries.items():
            fallback = CountingFallback()
            limiter = FallbackRateLimiter(primary, fallback)
            # when a login is throttled
            started = time.monotonic()
            wait = await asyncio.wait_for(limiter.hit(f"login:{name}", limit=5, window_seconds=60), 30)
            elapsed = time.monotonic() - started
            # then it is counted in process, after about one command timeout
            assert (wait, fallback.hits) == (0, 1), name
            assert elapsed < 3 * TIMEOUT, f"{name}: {elapsed:.2f}s"
    finally:
        await pipeline.aclose()
        await broker.shutdown()
        await redis.aclose()
