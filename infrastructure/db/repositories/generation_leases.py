"""A generation's lease: the worker holding it (`lease_token`) until `next_attempt_at`.

Every statement is one conditional UPDATE, so two workers can never both believe they
hold the same generation: a take succeeds only when no other token's lease runs past
`now`, a renewal and a release only while the caller's token is still the one stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, or_, update

from domain.generations import ACTIVE_STATUSES, Generation, GenerationStatus
from infrastructure.db.repositories.base import SqlRepository
from infrastructure.db.repositories.generation_rows import generation_of
from infrastructure.db.tables import GENERATIONS

g = GENERATIONS.c


def _not_held(now: datetime) -> ColumnElement[bool]:
    """Nobody holds the row at `now`: no token, or its lease ran out."""
    return or_(g.lease_token.is_(None), g.next_attempt_at.is_(None), g.next_attempt_at <= now)


class SqlGenerationLeases(SqlRepository):
    async def take_lease(
        self, generation_id: uuid.UUID, *, status: GenerationStatus, token: uuid.UUID, now: datetime, until: datetime
    ) -> Generation | None:
        stmt = (
            update(GENERATIONS)
            .where(g.id == generation_id, g.status == status.value, _not_held(now))
            .values(lease_token=token, next_attempt_at=until)
            .returning(*GENERATIONS.c)
        )
        row = await self.row(stmt)
        return generation_of(row) if row else None

    async def renew_lease(self, generation_id: uuid.UUID, *, token: uuid.UUID, until: datetime) -> bool:
        stmt = (
            update(GENERATIONS)
            .where(g.id == generation_id, g.lease_token == token, g.status.in_([s.value for s in ACTIVE_STATUSES]))
            .values(next_attempt_at=until)
            .returning(g.id)
        )
        return await self.row(stmt) is not None

    async def release_lease(self, generation_id: uuid.UUID, *, token: uuid.UUID, until: datetime | None) -> bool:
        stmt = (
            update(GENERATIONS)
            .where(g.id == generation_id, g.lease_token == token)
            .values(lease_token=None, next_attempt_at=until)
            .returning(g.id)
        )
        return await self.row(stmt) is not None

    async def defer(self, generation_ids: Sequence[uuid.UUID], until: datetime, *, now: datetime) -> None:
        if not generation_ids:
            return
        stmt = (
            update(GENERATIONS)
            .where(g.id.in_(set(generation_ids)), g.status == GenerationStatus.PROCESSING.value, _not_held(now))
            .values(next_attempt_at=until, lease_token=None)
        )
        connection = await self.session.connection()
        await connection.execute(stmt)
