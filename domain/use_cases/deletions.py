"""Deleting generations: one, or up to `MAX_BATCH` at once with an outcome per id.

Only the generation's owner deletes it; to anyone else it does not exist (NotFound, so
deleting tells nobody which ids exist; board members and admins included). A generation
that has not ended is refused (InvalidState: cancel it first), so no credits are held
when it goes. In one transaction the rows are locked, checked, their assets' object keys
queued for deletion (domain/use_cases/storage_deletions.py) and the rows deleted with
their inputs' links, assets and provider tasks; the input chunks stay (they are the
user's files) and so do the ledger's rows (no longer pointing at the generation).

A batch deletes every id that may be deleted and reports the others: an id's failure
does not hold the rest back, and the answer says which failed and why.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from domain.batches import MAX_GENERATION_DELETIONS, check_batch
from domain.errors import DomainError, InvalidState, NotFound
from domain.events import Event
from domain.generations import Generation
from domain.ports import Clock, EventPublisher, JobQueue
from domain.repositories import UnitOfWork
from domain.use_cases import storage_deletions
from domain.use_cases.generation_events import changed, publish_all
from domain.users import Principal

MAX_BATCH = MAX_GENERATION_DELETIONS


@dataclass(frozen=True, slots=True)
class DeletionOutcome:
    """What became of one requested id: deleted (error None), or why not."""

    generation_id: uuid.UUID
    error: DomainError | None = None

    @property
    def deleted(self) -> bool:
        return self.error is None


def _refusal(generation: Generation | None, principal: Principal) -> DomainError | None:
    if generation is None or generation.user_id != principal.user_id:
        return NotFound("generation")
    if not generation.is_final:
        return InvalidState(
            f"The generation is still {generation.status.value}: cancel it first (cancelGeneration), then delete it."
        )
    return None


async def delete_generations(
    *,
    principal: Principal,
    generation_ids: Sequence[uuid.UUID],
    uow: UnitOfWork,
    jobs: JobQueue,
    publisher: EventPublisher,
    clock: Clock,
) -> list[DeletionOutcome]:
    """Delete the viewer's ended generations among `generation_ids`; one outcome per distinct id, in order."""
    ids = list(dict.fromkeys(generation_ids))
    check_batch(len(ids), field="ids", limit=MAX_BATCH)
    now = clock.now()
    async with uow:
        found = {g.id: g for g in await uow.generations.lock_many(ids, user_id=principal.user_id)}
        outcomes = [DeletionOutcome(i, _refusal(found.get(i), principal)) for i in ids]
        doomed = [o.generation_id for o in outcomes if o.deleted]
        assets = await uow.generations.assets_of(doomed)
        keys = [a.object_key for i in doomed for a in assets.get(i, [])]
        await storage_deletions.queue(uow, keys, now)
        await uow.generations.delete_many(doomed)
        await uow.webhooks.delete_generation_webhooks(doomed)  # their messages stay in the log until purged
        await uow.commit()
    if keys:
        await storage_deletions.kick(jobs)
    # A subscriber still watching a deleted generation waits for its thumbnails: this ends its watch.
    events: list[Event] = [
        changed(dataclasses.replace(found[i], thumbnails_pending=0), found[i].status, now)
        for i in doomed
        if found[i].thumbnails_pending
    ]
    await publish_all(publisher, events)
    return outcomes


async def delete_generation(
    *,
    principal: Principal,
    generation_id: uuid.UUID,
    uow: UnitOfWork,
    jobs: JobQueue,
    publisher: EventPublisher,
    clock: Clock,
) -> uuid.UUID:
    """Delete one of the viewer's ended generations; raises its NotFound or InvalidState."""
    [outcome] = await delete_generations(
        principal=principal, generation_ids=[generation_id], uow=uow, jobs=jobs, publisher=publisher, clock=clock
    )
    if outcome.error is not None:
        raise outcome.error
    return generation_id
