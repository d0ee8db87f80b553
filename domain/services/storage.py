"""Storage upkeep: draining the deletion outbox (a worker task, also periodic)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.ports import ObjectStorage
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import storage_deletions
from domain.use_cases.storage_deletions import DeletionPolicy, DrainReport


@dataclass(frozen=True, slots=True)
class StorageUpkeep:
    uow: UnitOfWorkFactory
    storage: ObjectStorage
    deletion: DeletionPolicy

    async def drain_deletions(self) -> DrainReport:
        return await storage_deletions.drain(uow=self.uow(), storage=self.storage, policy=self.deletion)

    async def pending_deletions(self) -> int:
        return await storage_deletions.pending(uow=self.uow())
