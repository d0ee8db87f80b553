"""How tasks get the Container: one per worker process, opened on start-up, closed on shutdown.

In embedded mode the API's lifespan attaches its own container first
(`infrastructure.task_runtime.embedded_tasks`) and the start-up hook leaves it alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Annotated

from taskiq import TaskiqDepends, TaskiqEvents, TaskiqState

from domain.use_cases.processing import ProcessingPolicy, ProcessingPorts
from infrastructure.container import Container, open_container
from infrastructure.gc_tuning import frozen_heap
from infrastructure.settings import get_settings
from infrastructure.task_runtime import attach, attached_container, container_of, is_embedded
from workers.broker import broker

log = logging.getLogger("genhub.tasks")

STACK_KEY = "genhub_exit_stack"
# Without a broker that redelivers, a presumed-dead submitter is only retried by the
# poller: wait comfortably longer than a provider call may take.
EMBEDDED_LEASE_FLOOR_SECONDS = 60.0


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def open_worker_container(state: TaskiqState) -> None:
    if attached_container(broker) is not None:
        return  # embedded: the API process lent its container
    stack = contextlib.AsyncExitStack()
    container = await stack.enter_async_context(open_container(get_settings(), broker=broker))
    stack.enter_context(frozen_heap())
    state.data[STACK_KEY] = stack
    attach(broker, container)
    log.info("genhub worker ready (pid %d)", os.getpid())


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def close_worker_container(state: TaskiqState) -> None:
    stack: contextlib.AsyncExitStack | None = state.data.pop(STACK_KEY, None)
    if stack is None:
        return
    attach(broker, None)
    await stack.aclose()


def current_container() -> Container:
    return container_of(broker)


ContainerDep = Annotated[Container, TaskiqDepends(current_container)]


def ports_of(container: Container) -> ProcessingPorts:
    return ProcessingPorts(
        uow=container.uow,
        providers=container.providers,
        catalogue=container.catalogue,
        storage=container.storage,
        publisher=container.publisher,
        jobs=container.jobs,
        limiter=container.limiter,
        clock=container.clock,
    )


def policy_of(container: Container) -> ProcessingPolicy:
    settings = container.settings
    if is_embedded(container.broker):
        lease = max(EMBEDDED_LEASE_FLOOR_SECONDS, 2 * settings.provider_timeout_seconds + 30)
    else:
        # Below the redelivery timeout: a message redelivered because its worker died
        # finds the dead worker's lease already run out and takes over at once.
        lease = 0.9 * settings.task_idle_timeout_ms / 1000
    return ProcessingPolicy(
        max_attempts=settings.submit_max_attempts,
        retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds,
        poll_interval_seconds=settings.poll_interval_seconds,
        lease_seconds=lease,
        max_output_bytes=settings.upload_max_bytes,
        input_url_ttl_seconds=settings.presign_expires_seconds,
        callback_base_url=settings.public_base_url if settings.kie_callback_secret else None,
    )
