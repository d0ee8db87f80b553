"""The Taskiq broker (in-memory embedded, Redis streams with acknowledgement in production).

One broker per process, built from the process's Settings by its entry point: the API enqueues
on it, and `workers/` registers its tasks on it (workers/tasks.py `register_tasks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker
from taskiq.formatters.proxy_formatter import ProxyFormatter
from taskiq.kicker import AsyncKicker
from taskiq.message import BrokerMessage, TaskiqMessage
from taskiq.serializers import JSONSerializer

from infrastructure.metrics import TaskMetricsMiddleware
from infrastructure.outages import REDIS, translating
from infrastructure.pubsub.backoff import backoff_delay
from infrastructure.redis_pipelining import AutoPipeline
from infrastructure.redis_timeouts import redis_timeouts
from infrastructure.settings import Settings
from infrastructure.task_log_context import TaskLogContextMiddleware
from infrastructure.task_stream import LeasedStreamBroker

log = logging.getLogger("genhub.queue")

QUEUE_NAME = "genhub:tasks"
LISTEN_RETRY_BASE_SECONDS = 0.2
LISTEN_RETRY_CAP_SECONDS = 5.0
CONSUMER_GROUP = "genhub-workers"
XREAD_BLOCK_MS = 1000
#: Redis's answers to a read once the stream or its group is gone: NOGROUP to a new one;
#: "UNBLOCKED the stream key no longer exists" to one blocked while it went.
GROUP_LOST = ("NOGROUP", "UNBLOCKED")


class CompactJSONFormatter(ProxyFormatter):
    """taskiq's own message format, encoded by pydantic-core in one step.

    taskiq's default formatter dumps the message to a dict, then `json.dumps` it, then
    validates a `BrokerMessage` around the bytes; this one writes the JSON directly (compact
    separators, same keys and values) and builds the `BrokerMessage` without validation.
    Decoding is taskiq's (`ProxyFormatter.loads`), so either side reads the other's messages.
    """

    def dumps(self, message: TaskiqMessage) -> BrokerMessage:
        return BrokerMessage.model_construct(
            task_id=message.task_id,
            task_name=message.task_name,
            message=message.model_dump_json().encode(),
            labels=message.labels,
        )


class StreamBroker(LeasedStreamBroker):
    """The task stream: consumers hold messages under renewed leases (infrastructure/task_stream.py),
    and the producer side reuses one Redis client and pipelines its XADDs.

    taskiq-redis builds a new `Redis` client object (and its table of response
    callbacks) for every message it sends, a large part of the cost of enqueueing on the
    `generate` path (docs/benchmarks.md). The client here shares the broker's connection pool, and
    the XADDs of concurrent requests share round trips (`AutoPipeline`).
    """

    def __init__(self, url: str, *, reply_timeout: float = 5.0, connect_timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._producer = AutoPipeline(
            Redis(connection_pool=self.connection_pool), reply_timeout=reply_timeout, connect_timeout=connect_timeout
        )
        if type(self.serializer) is JSONSerializer:  # taskiq's default
            self.formatter = CompactJSONFormatter(self)

    @property
    def pipeline(self) -> AutoPipeline:
        """The producer's pipeline; other writers of the process may share it (one round trip for all)."""
        return self._producer

    async def kick(self, message: BrokerMessage) -> None:
        queue_name = message.labels.get("queue_name") or self.queue_name
        trim: tuple[Any, ...] = ("MAXLEN", "~" if self.approximate else "=", self.maxlen) if self.maxlen else ()
        await self._producer.call("XADD", queue_name, *trim, "*", b"data", message.message)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """taskiq-redis's reading loop, resumed after Redis went away instead of ending the worker.

        taskiq's process manager restarts a worker whose loop raised, which then fails to start
        while Redis is down (a crash loop). Here the loop waits with backoff, declares the
        consumer groups again, and reads on; unacknowledged messages are reclaimed as usual.
        A Redis that restarted empty (or was flushed) answers NOGROUP (or UNBLOCKED, to a read
        blocked meanwhile) rather than a connection error once it is back: that too means
        "declare the groups again", not the end of the worker.
        """
        attempt = 0
        while True:
            try:
                if attempt:
                    await self._declare_again()
                async for message in super().listen():
                    attempt = 0
                    yield message
            except (RedisConnectionError, RedisTimeoutError, ResponseError) as exc:
                if isinstance(exc, ResponseError) and not str(exc).startswith(GROUP_LOST):
                    raise
                attempt += 1
                delay = backoff_delay(attempt, base=LISTEN_RETRY_BASE_SECONDS, cap=LISTEN_RETRY_CAP_SECONDS)
                log.warning("task queue: Redis unavailable or emptied (%s); reading again in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def _declare_again(self) -> None:
        """The consumer groups after a reconnect: one that survived is kept; a lost one is made again
        from its stream's start, so a message queued before the worker came back is read too."""
        async with Redis(connection_pool=self.connection_pool) as redis:
            for stream in self.streams:
                with contextlib.suppress(ResponseError):  # BUSYGROUP: it survived
                    await redis.xgroup_create(stream, self.consumer_group_name, id="0", mkstream=True)

    async def shutdown(self) -> None:
        await self._producer.aclose()
        await super().shutdown()


def build_broker(settings: Settings) -> AsyncBroker:
    if not settings.redis_url:
        # Embedded mode: tasks run in the API process, concurrently with requests.
        return InMemoryBroker(max_async_tasks=100).with_middlewares(TaskLogContextMiddleware(), TaskMetricsMiddleware())
    return StreamBroker(
        settings.redis_url,
        queue_name=settings.task_queue_name or QUEUE_NAME,
        consumer_group_name=CONSUMER_GROUP,
        # Acknowledged only after the task finished. A message held by a consumer that stopped
        # renewing it (a dead worker) for one lease is reclaimed by another worker.
        idle_timeout=round(settings.task_lease_seconds * 1000),
        renew_seconds=settings.task_lease_renew_seconds,
        claim_every=min(1.0, settings.task_lease_renew_seconds),
        # The worker runs this many tasks at once (entrypoints/cli.py passes the same number to
        # taskiq), so it never holds a message it has no slot for.
        capacity=settings.worker_max_tasks,
        max_deliveries=settings.task_max_deliveries,
        dead_letter_maxlen=settings.task_dead_letter_maxlen,
        maxlen=settings.stream_maxlen,
        xread_block=XREAD_BLOCK_MS,
        # The producer's pipeline (XADD, and the rate limits that share it) gives up like any
        # command; the pool's connections also block in XREADGROUP, so they wait that long more.
        reply_timeout=settings.redis_command_timeout_seconds,
        connect_timeout=settings.redis_connect_timeout_seconds,
        **redis_timeouts(settings, blocking_ms=XREAD_BLOCK_MS),
    ).with_middlewares(TaskLogContextMiddleware(), TaskMetricsMiddleware())


class TaskiqJobQueue:
    """JobQueue port: kicks a task by name, so the API never imports the workers package."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker

    async def enqueue(self, task_name: str, **kwargs: Any) -> None:
        """Raises ServiceUnavailable when Redis cannot take the message."""
        with translating(REDIS):
            await AsyncKicker(task_name=task_name, broker=self.broker, labels={}).kiq(**kwargs)
