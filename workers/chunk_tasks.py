"""Scheduled chunk housekeeping: PENDING uploads never completed are removed with their objects."""

from __future__ import annotations

import logging

from domain.use_cases import chunks
from workers.broker import broker
from workers.dependencies import ContainerDep

log = logging.getLogger("genhub.tasks")


@broker.task(task_name="sweep_pending_chunks", schedule=[{"interval": 600, "schedule_id": "sweep_pending_chunks"}])
async def sweep_pending_chunks(container: ContainerDep) -> int:
    removed = await chunks.sweep_pending(
        ttl_seconds=container.settings.pending_chunk_ttl_seconds,
        uow=container.uow(),
        storage=container.storage,
        clock=container.clock,
    )
    if removed:
        log.info("swept %d stale pending chunks", removed)
    return removed
