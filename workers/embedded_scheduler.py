"""Embedded mode has no scheduler process: an asyncio loop in the API process kicks the periodic tasks.

It reads the same `schedule` labels as `genhub scheduler` (interval entries), but runs
the lifecycle sweeps at the exact `poll_interval_seconds` (fractions allowed), and
never starts a periodic task again while its previous run is still going.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from taskiq import AsyncBroker, AsyncTaskiqTask
from taskiq.kicker import AsyncKicker

from infrastructure.container import Container
from infrastructure.task_runtime import add_embedded_hook

log = logging.getLogger("genhub.scheduler")

LIFECYCLE_TASKS = ("poll_active_generations", "expire_stuck_generations")
RESULT_TIMEOUT_FLOOR = 30.0


def intervals(broker: AsyncBroker, poll_interval: float) -> dict[str, float]:
    """Seconds between runs of every task that has an interval schedule label."""
    found: dict[str, float] = {}
    for name, task in broker.get_all_tasks().items():
        for entry in task.labels.get("schedule", []):
            value = entry.get("interval") if isinstance(entry, dict) else None
            if isinstance(value, timedelta):
                value = value.total_seconds()
            if isinstance(value, int | float) and value > 0:
                found[name] = min(found.get(name, float(value)), float(value))
    for name in LIFECYCLE_TASKS:
        if name in found:
            found[name] = max(0.05, poll_interval)
    return found


async def _kick_and_wait(broker: AsyncBroker, name: str, wait_seconds: float) -> None:
    try:
        task: AsyncTaskiqTask[Any] = await AsyncKicker(task_name=name, broker=broker, labels={}).kiq()
        await task.wait_result(check_interval=0.05, timeout=wait_seconds)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a failed or slow run must not stop the schedule
        log.warning("periodic task %s: %r", name, exc)


async def run_schedule(broker: AsyncBroker, every: dict[str, float]) -> None:
    loop = asyncio.get_running_loop()
    next_at = {name: loop.time() + period for name, period in every.items()}
    running: dict[str, asyncio.Task[None]] = {}
    try:
        while next_at:
            now = loop.time()
            for name, at in next_at.items():
                if at > now:
                    continue
                next_at[name] = now + every[name]
                previous = running.get(name)
                if previous is None or previous.done():
                    timeout = max(RESULT_TIMEOUT_FLOOR, 10 * every[name])
                    running[name] = asyncio.create_task(_kick_and_wait(broker, name, timeout))
            await asyncio.sleep(max(0.01, min(next_at.values()) - loop.time()))
    finally:
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)


@contextlib.asynccontextmanager
async def embedded_scheduler(container: Container) -> AsyncIterator[None]:
    every = intervals(container.broker, container.settings.poll_interval_seconds)
    loop_task = asyncio.create_task(run_schedule(container.broker, every), name="genhub-embedded-scheduler")
    try:
        yield
    finally:
        loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop_task


add_embedded_hook(embedded_scheduler)
