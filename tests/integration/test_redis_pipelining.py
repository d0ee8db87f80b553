"""AutoPipeline against a real Redis: one pipeline per loop iteration, order kept, errors per command."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from infrastructure.redis_pipelining import AutoPipeline

pytestmark = pytest.mark.redis


class CountingRedis(Redis):
    """A real client that counts its round trips: pipelines opened and lone commands sent."""

    pipelines = 0

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        self.pipelines += 1
        return super().pipeline(*args, **kwargs)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.pipelines += 1
        return await super().execute_command(*args, **options)


@pytest.fixture
async def redis(clean_redis: str) -> AsyncIterator[CountingRedis]:
    client = CountingRedis.from_url(clean_redis)
    try:
        yield client
    finally:
        await client.aclose()


async def test_commands_of_one_iteration_share_one_pipeline_and_keep_their_order(redis: CountingRedis) -> None:
    # given 100 callers issuing a command at the same moment
    pipeline = AutoPipeline(redis)
    # when they all wait for their replies
    replies = await asyncio.gather(*(pipeline.call("RPUSH", "order", i) for i in range(100)))
    # then one pipeline carried them, in the order they were issued
    assert redis.pipelines == 1
    assert replies == list(range(1, 101))
    assert [int(v) for v in await redis.lrange("order", 0, -1)] == list(range(100))


async def test_a_lone_command_goes_at_once_and_fails_alone(redis: CountingRedis) -> None:
    pipeline = AutoPipeline(redis)

    assert await asyncio.wait_for(pipeline.call("SET", "k", "v"), timeout=1) is True
    assert await asyncio.wait_for(pipeline.call("GET", "k"), timeout=1) == b"v"
    with pytest.raises(ResponseError):
        await pipeline.call("INCR", "k")  # its own error; the pipeline goes on
    assert await pipeline.call("EXISTS", "k") == 1
    assert redis.pipelines == 4


async def test_a_failing_command_fails_only_its_caller(redis: CountingRedis) -> None:
    await redis.set("text", "not a number")
    pipeline = AutoPipeline(redis)

    results = await asyncio.gather(
        pipeline.call("INCR", "counter"),
        pipeline.call("INCR", "text"),
        pipeline.call("INCR", "counter"),
        return_exceptions=True,
    )

    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], ResponseError)


async def test_large_bursts_are_split_into_bounded_pipelines(redis: CountingRedis) -> None:
    pipeline = AutoPipeline(redis, max_batch=10)

    replies = await asyncio.gather(*(pipeline.call("INCR", "n") for _ in range(35)))

    assert sorted(replies) == list(range(1, 36))
    assert redis.pipelines == 4


async def test_submitted_commands_can_be_awaited_together(redis: CountingRedis) -> None:
    pipeline = AutoPipeline(redis)

    first, second = pipeline.submit("SET", "a", "1"), pipeline.submit("GET", "a")

    assert (await first, await second) == (True, b"1")
    assert redis.pipelines == 1


async def test_an_unreachable_server_fails_every_caller_of_the_batch() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        pipeline = AutoPipeline(client)
        results = await asyncio.gather(*(pipeline.call("PING") for _ in range(3)), return_exceptions=True)
    finally:
        await client.aclose()

    assert all(isinstance(r, RedisConnectionError) for r in results)


async def test_a_cancelled_caller_leaves_the_others_their_replies(redis: CountingRedis) -> None:
    pipeline = AutoPipeline(redis)
    first = asyncio.ensure_future(pipeline.call("INCR", "n"))
    second = asyncio.ensure_future(pipeline.call("INCR", "n"))
    await asyncio.sleep(0)
    first.cancel()

    assert await second == 2  # the cancelled caller's command still ran: its reply is simply dropped
    await pipeline.drain()
    assert int(await redis.get("n")) == 2
