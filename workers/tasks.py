"""Taskiq tasks, registered on the shared broker by importing this module.

Each task is thin: decode its arguments, call one use case with the process's ports.
Every use case is idempotent, so at-least-once delivery is safe.
"""

from __future__ import annotations

import logging
import math
import uuid

from domain.use_cases import finalization, submission, sweeps
from domain.use_cases.callbacks import CALLBACK_TASK
from domain.use_cases.generations import CANCEL_TASK, SUBMIT_TASK
from domain.use_cases.processing import FINALIZE_TASK
from infrastructure.settings import get_settings
from workers import chunk_tasks as _chunk_tasks  # noqa: F401  (registers sweep_pending_chunks)
from workers import embedded_scheduler as _embedded  # noqa: F401  (in-process schedule for embedded mode)
from workers.broker import broker
from workers.dependencies import ContainerDep

log = logging.getLogger("genhub.tasks")

POLL_TASK = "poll_active_generations"
EXPIRE_TASK = "expire_stuck_generations"
REFRESH_TASK = "refresh_generation"
# The scheduler process only knows whole seconds (the embedded loop uses the exact value).
PERIOD_SECONDS = max(1, math.ceil(get_settings().poll_interval_seconds))


@broker.task(task_name=SUBMIT_TASK)
async def submit_generation(generation_id: str, container: ContainerDep) -> None:
    await submission.submit(uuid.UUID(generation_id), ports=container.processing, policy=container.policy)


async def _refresh(generation_id: str, container: ContainerDep) -> None:
    await finalization.refresh(uuid.UUID(generation_id), ports=container.processing, policy=container.policy)


# A finalize takes the same path as a refresh: the provider's own answer decides, and only
# one finalize wins. Two names, because messages of both are in flight in every deployment.
refresh_generation = broker.task(task_name=REFRESH_TASK)(_refresh)
finalize_generation = broker.task(task_name=FINALIZE_TASK)(_refresh)


@broker.task(task_name=CALLBACK_TASK)
async def handle_provider_callback(provider: str, external_id: str, container: ContainerDep) -> None:
    await finalization.handle_callback(provider, external_id, ports=container.processing, policy=container.policy)


@broker.task(task_name=CANCEL_TASK)
async def cancel_provider_task(generation_id: str, container: ContainerDep) -> None:
    await sweeps.cancel_remote(uuid.UUID(generation_id), ports=container.processing)


@broker.task(task_name=POLL_TASK, schedule=[{"interval": PERIOD_SECONDS, "schedule_id": POLL_TASK}])
async def poll_active_generations(container: ContainerDep) -> dict[str, int]:
    report = await sweeps.poll_active(ports=container.processing, policy=container.policy)
    return {"polled": report.polled, "finalizing": report.finalizing, "resubmitted": report.resubmitted}


@broker.task(task_name=EXPIRE_TASK, schedule=[{"interval": PERIOD_SECONDS, "schedule_id": EXPIRE_TASK}])
async def expire_stuck_generations(container: ContainerDep) -> int:
    expired = await sweeps.expire_stuck(ports=container.processing, policy=container.policy)
    if expired:
        log.info("expired %d generation(s) past their deadline", expired)
    return expired
