"""A generation's lease: the worker holding it (`lease_token`) until `next_attempt_at`.

Every statement is one conditional UPDATE, so two workers can never both believe they
hold the same generation: a claim or a take succeeds only when no lease runs past the
database's now, a renewal and a release only while the caller's token is still the one
stored. Lease deadlines are computed and compared by the database (`clock_timestamp()`
plus a duration passed as a parameter), never by a worker's own clock: a worker whose
clock runs ahead cannot see a live worker's lease as run out. The embedded SQLite
database serves one process, whose clock is then the database's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, DateTime, Interval, func, literal, or_, update

from domain.generations import ACTIVE_STATUSES, Generation, GenerationStatus
from infrastructure.db.repositories.base import SqlRepository
from infrastructure.db.repositories.generation_rows import generation_of
from infrastructure.db.tables import GENERATIONS

g = GENERATIONS.c
SUBMITTABLE = (GenerationStatus.QUEUED.value, GenerationStatus.SUBMITTING.value)
TIMESTAMP = DateTime(timezone=True)


class SqlGenerationLeases(SqlRepository):
    def database_time(self, after: timedelta = timedelta(0)) -> ColumnElement[datetime]:
        """The database's now plus `after`, evaluated by the statement that uses it."""
        if self.dialect != "postgresql":
            return literal(datetime.now(UTC) + after, TIMESTAMP)
        now: ColumnElement[datetime] = func.clock_timestamp(type_=TIMESTAMP)
        return now + literal(after, Interval()) if after else now

    def _not_held(self) -> ColumnElement[bool]:
        """Nobody holds the row at the database's now: no token, or its lease ran out."""
        return or_(g.lease_token.is_(None), g.next_attempt_at.is_(None), g.next_attempt_at <= self.database_time())

    async def claim_submit(
        self, generation_id: uuid.UUID, *, token: uuid.UUID, at: datetime, lease: timedelta, max_attempts: int
    ) -> Generation | None:
        now = self.database_time()
        stmt = (
            update(GENERATIONS)
            .where(
                g.id == generation_id,
                g.status.in_(SUBMITTABLE),
                # A live submitter's lease and a retry's backoff both keep a new attempt off.
                or_(g.next_attempt_at.is_(None), g.next_attempt_at <= now),
                or_(g.deadline_at.is_(None), g.deadline_at > now),
                g.submit_attempts < max_attempts,
            )
            .values(
                status=GenerationStatus.SUBMITTING.value,
                updated_at=at,
                submit_attempts=g.submit_attempts + 1,
                lease_token=token,
                next_attempt_at=self.database_time(lease),
            )
            .returning(*GENERATIONS.c)
        )
        row = await self.row(stmt)
        return generation_of(row) if row else None

    async def take_lease(
        self, generation_id: uuid.UUID, *, status: GenerationStatus, token: uuid.UUID, lease: timedelta
    ) -> Generation | None:
        stmt = (
            update(GENERATIONS)
            .where(g.id == generation_id, g.status == status.value, self._not_held())
            .values(lease_token=token, next_attempt_at=self.database_time(lease))
            .returning(*GENERATIONS.c)
        )
        row = await self.row(stmt)
        return generation_of(row) if row else None

    async def renew_lease(self, generation_id: uuid.UUID, *, token: uuid.UUID, lease: timedelta) -> bool:
        stmt = (
            update(GENERATIONS)
            .where(g.id == generation_id, g.lease_token == token, g.status.in_([s.value for s in ACTIVE_STATUSES]))
            .values(next_attempt_at=self.database_time(lease))
            .returning(g.id)
        )
        return await self.row(stmt) is not None

    async def release_lease(self, generation_id: uuid.UUID, *, token: uuid.UUID, after: timedelta | None) -> bool:
        stmt = (
            update(GENERATIONS)
            .where(g.id == generation_id, g.lease_token == token)
            .values(lease_token=None, next_attempt_at=None if after is None else self.database_time(after))
            .returning(g.id)
        )
        return await self.row(stmt) is not None

    async def defer(self, generation_ids: Sequence[uuid.UUID], after: timedelta) -> None:
        if not generation_ids:
            return
        stmt = (
            update(GENERATIONS)
            .where(g.id.in_(set(generation_ids)), g.status == GenerationStatus.PROCESSING.value, self._not_held())
            .values(next_attempt_at=self.database_time(after), lease_token=None)
        )
        connection = await self.session.connection()
        await connection.execute(stmt)
