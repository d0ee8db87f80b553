"""The webhook outbox: the messages of a generation's change, written in the change's own transaction.

A use case that commits a change of a generation calls `record` inside its unit of work,
before `commit()`: the message and one delivery per matching target are committed with the
change or not at all. After the commit it calls `dispatch` with what `record` returned:
one delivery task each. A task that is never queued (Redis down) costs only time: each new
delivery is held for its task for `dispatch_hold`, then the delivery sweep takes it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.generations import Generation, GenerationStatus
from domain.ports import JobQueue
from domain.repositories import UnitOfWork
from domain.webhook_messages import (
    Dispatch,
    NewDelivery,
    WebhookMessage,
    body_of,
    event_for,
    new_message_id,
    payload,
)
from domain.webhooks import WebhookEvent

log = logging.getLogger("genhub.webhooks")

DELIVER_TASK = "deliver_webhook"
OUTPUT_KIND = "output"


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    #: At most one progress message per generation and target per this interval.
    progress_interval: timedelta = timedelta(seconds=10)
    #: A new delivery waits this long for the task queued for it before the sweep takes it.
    dispatch_hold: timedelta = timedelta(seconds=60)


DEFAULT_OUTBOX = OutboxPolicy()


async def record(
    uow: UnitOfWork,
    generation: Generation,
    previous: GenerationStatus | None,
    at: datetime,
    policy: OutboxPolicy,
) -> list[Dispatch]:
    """Inside `uow`, before its commit: the message of this change for every target that asked for its
    event type (none: nothing written). What to `dispatch` once committed."""
    event = event_for(previous, generation)
    if event is None:
        return []
    targets = [t for t in await uow.webhooks.targets(generation.user_id, generation.id) if event in t.events]
    if targets and event is WebhookEvent.GENERATION_PROGRESS:
        recent = await uow.webhooks.progress_since(generation.id, at - policy.progress_interval)
        targets = [t for t in targets if t.endpoint_id not in recent]
    if not targets:
        return []
    outputs: list[uuid.UUID] = []
    if event is WebhookEvent.GENERATION_COMPLETED and generation.status is GenerationStatus.SUCCEEDED:
        assets = (await uow.generations.assets_of([generation.id])).get(generation.id, [])
        outputs = [a.id for a in sorted(assets, key=lambda a: a.position) if a.kind == OUTPUT_KIND]
    message = WebhookMessage(
        id=new_message_id(),
        user_id=generation.user_id,
        generation_id=generation.id,
        event=event,
        body=body_of(payload(event, generation, previous, at, outputs)),
        created_at=at,
    )
    deliveries = [
        NewDelivery(
            id=uuid.uuid4(),
            message_id=message.id,
            user_id=generation.user_id,
            endpoint_id=target.endpoint_id,
            generation_id=generation.id,
            event=event,
            url=target.url,
            dispatch_token=uuid.uuid4(),
            created_at=at,
        )
        for target in targets
    ]
    await uow.webhooks.add_message(message, deliveries, hold=policy.dispatch_hold)
    return [Dispatch(d.id, d.dispatch_token) for d in deliveries]


async def dispatch(jobs: JobQueue, dispatches: Sequence[Dispatch]) -> None:
    """Queue a delivery task for each committed delivery. Never raises: the sweep takes what is not queued."""
    for item in dispatches:
        try:
            await jobs.enqueue(DELIVER_TASK, delivery_id=str(item.delivery_id), token=str(item.token))
        except Exception as exc:
            log.warning("queueing webhook delivery %s failed (the sweep will take it): %s", item.delivery_id, exc)
