"""The scheduler process's TaskiqScheduler: a send that fails is logged, never left in a task nobody awaits."""

from __future__ import annotations

import logging

from taskiq import ScheduledTask, ScheduleSource, TaskiqScheduler

from infrastructure.outages import REDIS, as_unavailable

log = logging.getLogger("genhub.scheduler")


class LoggingScheduler(TaskiqScheduler):
    """taskiq runs each send in a task of its own and never awaits it: an exception there (Redis down)
    is printed as "Task exception was never retrieved" with a traceback, once per tick. Here it is one
    warning line; the next tick sends again, and the poll sweep catches up on anything missed."""

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        try:
            await super().on_ready(source, task)
        except Exception as exc:
            if as_unavailable(exc, REDIS) is None:
                log.exception("periodic task %s could not be sent", task.task_name)
            else:
                log.warning("periodic task %s not sent, Redis is unavailable: %s", task.task_name, exc)
