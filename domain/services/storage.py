"""Storage upkeep: draining the deletion outbox (a worker task, also periodic) and the orphan sweep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from domain.ports import Clock, ObjectStorage
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import orphans, storage_deletions
from domain.use_cases.orphans import OrphanReport
from domain.use_cases.storage_deletions import DeletionPolicy, DrainReport


@dataclass(frozen=True, slots=True)
class StorageUpkeep:
    uow: UnitOfWorkFactory
    storage: ObjectStorage
    deletion: DeletionPolicy
    clock: Clock
    orphan_grace: timedelta

    async def drain_deletions(self) -> DrainReport:
        return await storage_deletions.drain(uow=self.uow(), storage=self.storage, policy=self.deletion)

    async def pending_deletions(self) -> int:
        return await storage_deletions.pending(uow=self.uow())

    async def sweep_orphans(self, *, dry_run: bool) -> OrphanReport:
        return await orphans.sweep_orphans(
            uow=self.uow(), storage=self.storage, clock=self.clock, grace=self.orphan_grace, dry_run=dry_run
        )
