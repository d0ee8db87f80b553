"""The publishing side of the Redis pub/sub backend: PUBLISH through an auto-pipeline with a brief retry.

The retry is short on purpose: a status change must not hang on Redis. When Redis stays
unreachable :class:`PubSubUnavailable` is raised and the caller decides;
:class:`~infrastructure.pubsub.publisher.BroadcastPublisher` logs and drops it, because the
state change is already committed and fan-out is best effort.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from infrastructure.pubsub.backoff import backoff_delay
from infrastructure.redis_pipelining import AutoPipeline, ignore_outcomes

#: Errors that mean "Redis is not reachable right now" (redis-py wraps most in RedisError;
#: OSError also covers the built-in TimeoutError).
CONNECTION_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)


class PubSubUnavailable(Exception):
    """Redis could not be reached to publish (or at connect time)."""


class RedisPublisher:
    """PUBLISHes through an `AutoPipeline` (one connection of its own, commands pipelined).

    The pipeline is ours (opened on a client, closed by `aclose`) or `shared_pipeline`,
    one shared with the process's other writers (the queue's XADDs), which we never close.
    ``attempts`` within ``timeout`` seconds: the brief retry.
    """

    def __init__(self, *, attempts: int, timeout: float, shared_pipeline: AutoPipeline | None = None) -> None:
        self._attempts = max(1, attempts)
        self._timeout = timeout
        self._shared_pipeline = shared_pipeline
        self._pipeline: AutoPipeline | None = None

    def open(self, client: Redis) -> None:
        """Publish through the shared pipeline, or one of our own on `client`."""
        self._pipeline = self._shared_pipeline or AutoPipeline(client)

    async def aclose(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None and pipeline is not self._shared_pipeline:
            await pipeline.aclose()

    async def publish(self, messages: Sequence[tuple[str, Any]], what: str) -> None:
        """The PUBLISHes go out through the auto-pipeline: concurrent publishers share round trips."""
        if self._pipeline is None:
            raise PubSubUnavailable("RedisPubSubBackend is not connected")
        pipeline = self._pipeline
        last_error: BaseException | None = None
        attempts = 0
        try:
            async with asyncio.timeout(self._timeout):
                while attempts < self._attempts:
                    attempts += 1
                    try:
                        replies = [pipeline.submit("PUBLISH", channel, message) for channel, message in messages]
                        try:
                            for reply in replies:  # in order on one connection: no gather needed
                                await reply
                        except BaseException:
                            ignore_outcomes(replies)  # the first failure is the one raised
                            raise
                        return
                    except CONNECTION_ERRORS as exc:
                        last_error = exc
                        if attempts < self._attempts:
                            await asyncio.sleep(backoff_delay(attempts, base=0.05, cap=0.5))
        except TimeoutError as exc:
            last_error = exc if last_error is None else last_error
        raise PubSubUnavailable(
            f"cannot publish to Redis {what} "
            f"({attempts} attempt(s) within {self._timeout}s): {last_error or 'timed out'}"
        ) from last_error
