"""Deleting generations: the rows a deletion locks first, and the delete itself.

The inputs' links, assets and provider tasks go by their ON DELETE CASCADE; the ledger's
`generation_id` is SET NULL, so money history stays and no longer points at the generation.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select

from domain.generations import Generation
from infrastructure.db.repositories.base import SqlRepository
from infrastructure.db.repositories.generation_rows import generation_of
from infrastructure.db.tables import GENERATIONS

g = GENERATIONS.c


class SqlGenerationDeletions(SqlRepository):
    async def lock_many(self, ids: Sequence[uuid.UUID], *, user_id: uuid.UUID) -> list[Generation]:
        if not ids:
            return []
        # In id order: two deletions of overlapping sets lock in the same order (no deadlock). Only the
        # user's own rows: FOR UPDATE on another user's running generation would stall its finalizer.
        stmt = select(GENERATIONS).where(g.id.in_(set(ids)), g.user_id == user_id).order_by(g.id)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        return [generation_of(row) for row in await self.rows(stmt)]

    async def ids_of_user(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        return list(await self.scalars(select(g.id).where(g.user_id == user_id).order_by(g.id)))

    async def delete_many(self, ids: Sequence[uuid.UUID]) -> int:
        if not ids:
            return 0
        stmt = delete(GENERATIONS).where(g.id.in_(set(ids))).returning(g.id)
        return len((await self.session.execute(stmt)).all())
