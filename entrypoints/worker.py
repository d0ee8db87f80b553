"""What `genhub worker` and `genhub scheduler` hand to taskiq: factories it calls once per process.

Each sets up the process's logging first (a no-op change under `genhub worker`, whose
children inherit it; the set-up when taskiq's own command line imports them).
"""

from __future__ import annotations

from taskiq import AsyncBroker, TaskiqScheduler
from taskiq.schedule_sources import LabelScheduleSource

from infrastructure.logging_setup import configure_process_logging
from infrastructure.settings import get_settings
from workers.runtime import serve_tasks, task_broker
from workers.scheduler import LoggingScheduler


def worker_broker() -> AsyncBroker:
    """`taskiq worker entrypoints.worker:worker_broker`: every task, and this process's Services on start-up."""
    settings = get_settings()
    configure_process_logging(settings)
    return serve_tasks(task_broker(settings), settings)


def scheduler() -> TaskiqScheduler:
    """`taskiq scheduler entrypoints.worker:scheduler`: kicks the tasks' interval labels (one per deployment)."""
    settings = get_settings()
    configure_process_logging(settings)
    broker = task_broker(settings)
    return LoggingScheduler(broker=broker, sources=[LabelScheduleSource(broker)])
