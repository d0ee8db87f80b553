"""After a generation's change is committed: its event, and announcing it while its follow-up task is queued."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from domain.events import Event, GenerationChanged
from domain.generations import Generation, GenerationStatus
from domain.ports import EventPublisher, JobQueue

log = logging.getLogger("genhub.generations")


async def publish_all(publisher: EventPublisher, events: list[Event]) -> None:
    if events:
        await publisher.publish_many(events)


def changed(generation: Generation, previous: GenerationStatus | None, at: datetime) -> GenerationChanged:
    """The event of a change just committed, carrying ``generation`` as committed (subscribers show it)."""
    return GenerationChanged.of(generation, previous, at)


async def enqueue_and_announce(
    jobs: JobQueue,
    task: str | None,
    generation: Generation,
    publisher: EventPublisher,
    events: list[Event],
    *,
    args: Mapping[str, str] | None = None,
) -> bool:
    """Queue `task` for a committed change and announce it at the same time; False when queueing failed.

    The change is committed either way, so a failed enqueue is logged, not raised: an error
    would tell the caller that nothing happened. Publishing never raises. The task's arguments
    are `args`, or the generation's id alone.
    """
    announcing = asyncio.ensure_future(publish_all(publisher, events))
    try:
        if task is not None:
            await jobs.enqueue(task, **(args if args is not None else {"generation_id": str(generation.id)}))
    except Exception:
        log.exception("queueing %s for generation %s failed", task, generation.id)
        return False
    finally:
        await announcing
    return True
