"""The Taskiq broker (in-memory embedded, Redis streams with acknowledgement in production).

One broker per process, shared by the API (to enqueue) and by `workers/` (to run).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from taskiq import AsyncBroker, InMemoryBroker
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from infrastructure.metrics import TaskMetricsMiddleware
from infrastructure.settings import Settings, get_settings

QUEUE_NAME = "genhub:tasks"
CONSUMER_GROUP = "genhub-workers"


def build_broker(settings: Settings) -> AsyncBroker:
    if not settings.redis_url:
        # Embedded mode: tasks run in the API process, concurrently with requests.
        return InMemoryBroker(max_async_tasks=100).with_middlewares(TaskMetricsMiddleware())
    return RedisStreamBroker(
        settings.redis_url,
        queue_name=settings.task_queue_name or QUEUE_NAME,
        consumer_group_name=CONSUMER_GROUP,
        # Acked only after the task finished; a message unacked for idle_timeout is
        # reclaimed by another worker, so this must exceed the slowest task.
        idle_timeout=settings.task_idle_timeout_ms,
        unacknowledged_lock_timeout=max(1.0, settings.task_idle_timeout_ms / 1000 / 2),
        maxlen=settings.stream_maxlen,
        xread_block=1000,
    ).with_middlewares(TaskMetricsMiddleware())


@lru_cache(maxsize=1)
def shared_broker() -> AsyncBroker:
    """The process-wide broker: tasks register on it at import time (see workers/tasks.py)."""
    return build_broker(get_settings())


class TaskiqJobQueue:
    """JobQueue port: kicks a task by name, so the API never imports the workers package."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker

    async def enqueue(self, task_name: str, **kwargs: Any) -> None:
        await AsyncKicker(task_name=task_name, broker=self.broker, labels={}).kiq(**kwargs)
