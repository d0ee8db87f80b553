"""Where Taskiq tasks find the process's Container.

A worker process opens its own container on WORKER_STARTUP (see workers/dependencies.py).
In embedded mode (InMemoryBroker) tasks run inside the API process: the app lifespan
lends its container through `embedded_tasks`, which also runs the hooks the workers
package registered (the embedded scheduler), so `graph` never imports `workers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from taskiq import AsyncBroker, InMemoryBroker

if TYPE_CHECKING:
    from infrastructure.container import Container

log = logging.getLogger("genhub.tasks")

CONTAINER_KEY = "genhub_container"
DRAIN_SECONDS = 10.0

EmbeddedHook = Callable[["Container"], AbstractAsyncContextManager[None]]
_hooks: list[EmbeddedHook] = []


def add_embedded_hook(hook: EmbeddedHook) -> None:
    """Run `hook(container)` around the API's life whenever tasks run in-process."""
    if hook not in _hooks:
        _hooks.append(hook)


def attached_container(broker: AsyncBroker) -> Container | None:
    container: Container | None = broker.state.data.get(CONTAINER_KEY)
    return container


def container_of(broker: AsyncBroker) -> Container:
    container = attached_container(broker)
    if container is None:
        raise RuntimeError("No container is attached to the broker: the worker did not start up.")
    return container


def attach(broker: AsyncBroker, container: Container | None) -> None:
    if container is None:
        broker.state.data.pop(CONTAINER_KEY, None)
    else:
        broker.state.data[CONTAINER_KEY] = container


def is_embedded(broker: AsyncBroker) -> bool:
    return isinstance(broker, InMemoryBroker)


@contextlib.asynccontextmanager
async def embedded_tasks(container: Container) -> AsyncIterator[None]:
    """Lend `container` to in-process tasks and start the embedded hooks (no-op with a real broker)."""
    broker = container.broker
    if not isinstance(broker, InMemoryBroker):
        yield
        return
    previous = attached_container(broker)
    attach(broker, container)
    try:
        async with contextlib.AsyncExitStack() as stack:
            for hook in list(_hooks):
                await stack.enter_async_context(hook(container))
            yield
        # The periodic kicks have stopped: let in-flight tasks finish while the adapters are open.
        try:
            await asyncio.wait_for(broker.wait_all(), DRAIN_SECONDS)
        except TimeoutError:
            log.warning("in-process tasks still running after %.0fs at shutdown", DRAIN_SECONDS)
    finally:
        attach(broker, previous)
