"""How tasks run: a broker with every task on it, a worker process's Services, and embedded mode.

- `task_broker(settings)`: the process's broker, built from its Settings, tasks registered.
- `serve_tasks(broker, settings)`: a worker process opens its Services on start-up and
  closes them on shutdown (the `genhub worker` entry point, entrypoints/worker.py).
- `embedded_tasks(services)`: with an InMemoryBroker the API process runs the tasks itself.
  There is no scheduler process then: an asyncio loop kicks the periodic tasks. It reads
  the same `schedule` labels as `genhub scheduler` (interval entries), but runs the
  lifecycle sweeps at the exact `poll_interval_seconds` (fractions allowed), and never
  starts a periodic task again while its previous run is still going.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from taskiq import AsyncBroker, AsyncTaskiqTask, InMemoryBroker, TaskiqEvents, TaskiqState
from taskiq.kicker import AsyncKicker

from infrastructure.bootstrap import Services, build_broker, open_services
from infrastructure.gc_tuning import frozen_heap
from infrastructure.outages import UNKNOWN, as_unavailable
from infrastructure.pubsub.backoff import backoff_delay
from infrastructure.settings import Settings
from infrastructure.task_runtime import attach, attached_services
from workers.tasks import register_tasks

log = logging.getLogger("genhub.scheduler")

STACK_KEY = "genhub_exit_stack"
DRAIN_SECONDS = 10.0

LIFECYCLE_TASKS = ("poll_active_generations", "expire_stuck_generations")
RESULT_TIMEOUT_FLOOR = 30.0
START_RETRY_BASE_SECONDS = 0.5
START_RETRY_CAP_SECONDS = 10.0


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


def task_broker(settings: Settings) -> AsyncBroker:
    """The process's broker for `settings`, with every task registered on it."""
    return register_tasks(build_broker(settings), settings)


async def open_when_reachable(stack: contextlib.AsyncExitStack, settings: Settings, broker: AsyncBroker) -> Services:
    """The worker's Services, waiting with backoff while Redis or PostgreSQL cannot be reached.

    Raising here ends the worker process, which taskiq starts again at once: a loop of
    tracebacks for as long as the outage lasts. Any other error still ends it.
    """
    attempt = 0
    while True:
        try:
            return await stack.enter_async_context(open_services(settings, broker=broker))
        except Exception as exc:
            if as_unavailable(exc, UNKNOWN) is None:
                raise
            attempt += 1
            delay = backoff_delay(attempt, base=START_RETRY_BASE_SECONDS, cap=START_RETRY_CAP_SECONDS)
            log.warning("worker start: a dependency is unavailable (%s); trying again in %.1f s", exc, delay)
            await asyncio.sleep(delay)


def serve_tasks(broker: AsyncBroker, settings: Settings) -> AsyncBroker:
    """A worker process: open its Services (from `settings`) on start-up, close them on shutdown."""

    async def start(state: TaskiqState) -> None:
        if attached_services(broker) is not None:
            return  # embedded: the API process lent its services
        stack = contextlib.AsyncExitStack()
        services = await open_when_reachable(stack, settings, broker)
        stack.enter_context(frozen_heap())
        state.data[STACK_KEY] = stack
        attach(broker, services)
        log.info("genhub worker ready (pid %d)", os.getpid())

    async def stop(state: TaskiqState) -> None:
        stack: contextlib.AsyncExitStack | None = state.data.pop(STACK_KEY, None)
        if stack is None:
            return
        attach(broker, None)
        await stack.aclose()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, start)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, stop)
    return broker


@contextlib.asynccontextmanager
async def embedded_tasks(services: Services) -> AsyncIterator[None]:
    """Lend `services` to in-process tasks and run their schedule (no-op with a real broker)."""
    broker = services.broker
    if not isinstance(broker, InMemoryBroker):
        yield
        return
    previous = attached_services(broker)
    attach(broker, services)
    try:
        every = intervals(broker, services.settings.poll_interval_seconds)
        loop_task = asyncio.create_task(run_schedule(broker, every), name="genhub-embedded-scheduler")
        try:
            yield
        finally:
            loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
        # The periodic kicks have stopped: let in-flight tasks finish while the adapters are open.
        try:
            await asyncio.wait_for(broker.wait_all(), DRAIN_SECONDS)
        except TimeoutError:
            log.warning("in-process tasks still running after %.0fs at shutdown", DRAIN_SECONDS)
    finally:
        attach(broker, previous)
