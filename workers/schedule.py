"""The scheduler `genhub scheduler` runs (exactly one per deployment): interval labels of the tasks."""

from __future__ import annotations

from taskiq import TaskiqScheduler
from taskiq.schedule_sources import LabelScheduleSource

import workers.tasks  # noqa: F401  (registers the tasks and their schedule labels)
from workers.broker import broker

scheduler = TaskiqScheduler(broker=broker, sources=[LabelScheduleSource(broker)])
