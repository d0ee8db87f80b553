"""Socket timeouts of our Redis clients: a Redis host that stops answering is given up on in seconds.

Without them a dropped connection (packets lost, a host gone) is noticed only at the
operating system's TCP timeout, minutes later, and every request that touches Redis waits
that long before its fallback or typed refusal starts. A client that blocks on purpose
(XREADGROUP with BLOCK) gets its block time on top of the command timeout; the pub/sub
listeners wait indefinitely by design and keep their own health checks
(infrastructure/pubsub/redis_backend.py).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from infrastructure.redis_pipelining import AutoPipeline
from infrastructure.settings import Settings


def redis_timeouts(settings: Settings, *, blocking_ms: int = 0) -> dict[str, Any]:
    """Keyword arguments for a redis-py client or pool; `blocking_ms`: its longest deliberate block.

    redis-py's default retry repeats a command that timed out, several times with backoff,
    which would multiply the bound: a timed-out command is not repeated, and a broken
    connection (a pooled one that Redis closed while idle, a restart) is retried once, at once.
    """
    return {
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "socket_timeout": settings.redis_command_timeout_seconds + blocking_ms / 1000,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


def command_client(settings: Settings) -> Redis:
    """The process's client for short commands (rate limits, cache invalidation, probes)."""
    return Redis.from_url(
        settings.redis_url, decode_responses=False, health_check_interval=30, **redis_timeouts(settings)
    )


def command_pipeline(settings: Settings, redis: Redis) -> AutoPipeline:
    """An automatic pipeline on `redis`'s address that gives up within the same timeouts."""
    return AutoPipeline(
        redis,
        reply_timeout=settings.redis_command_timeout_seconds,
        connect_timeout=settings.redis_connect_timeout_seconds,
    )
