"""Taskiq tasks, registered on the shared broker by importing this module (bodies land next)."""

from __future__ import annotations

import logging

from workers import dependencies as _dependencies  # noqa: F401  (start-up/shutdown hooks)
from workers.broker import broker

log = logging.getLogger("genhub.tasks")


@broker.task(task_name="submit_generation")
async def submit_generation(generation_id: str) -> None:
    log.info("submit_generation %s (not wired yet)", generation_id)


@broker.task(task_name="cancel_provider_task")
async def cancel_provider_task(generation_id: str) -> None:
    log.info("cancel_provider_task %s (not wired yet)", generation_id)
