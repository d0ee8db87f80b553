"""Where Taskiq tasks find the process's Services: in the broker's state, put there by whoever runs them.

A worker process opens its own Services on WORKER_STARTUP (workers/runtime.py `serve_tasks`).
In embedded mode (InMemoryBroker) tasks run inside the API process, which lends its
Services (workers/runtime.py `embedded_tasks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskiq import AsyncBroker, InMemoryBroker, TaskiqState

if TYPE_CHECKING:
    from infrastructure.bootstrap import Services

SERVICES_KEY = "genhub_services"


def services_in(state: TaskiqState) -> Services:
    services: Services | None = state.data.get(SERVICES_KEY)
    if services is None:
        raise RuntimeError("No services are attached to the broker: the worker did not start up.")
    return services


def attached_services(broker: AsyncBroker) -> Services | None:
    services: Services | None = broker.state.data.get(SERVICES_KEY)
    return services


def attach(broker: AsyncBroker, services: Services | None) -> None:
    if services is None:
        broker.state.data.pop(SERVICES_KEY, None)
    else:
        broker.state.data[SERVICES_KEY] = services


def is_embedded(broker: AsyncBroker) -> bool:
    return isinstance(broker, InMemoryBroker)
