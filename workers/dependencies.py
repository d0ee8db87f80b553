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

from infrastructure.container import Container, open_container
from infrastructure.gc_tuning import frozen_heap
from infrastructure.settings import get_settings
from infrastructure.task_runtime import attach, attached_container, container_of
from workers.broker import broker

log = logging.getLogger("genhub.tasks")

STACK_KEY = "genhub_exit_stack"


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
