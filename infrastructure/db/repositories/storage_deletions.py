"""The storage deletion outbox: keys of objects whose rows are gone, until a worker deleted them.

Claims and retries are timed by the database's clock (like generation leases), so workers
whose clocks differ never take the same key at once; `FOR UPDATE SKIP LOCKED` lets several
workers drain the outbox side by side. SQLite serves one process: its clock is then ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, DateTime, Interval, delete, func, literal, select, union_all, update

from domain.repositories import ClaimedDeletion
from infrastructure.db.models import StorageDeletionRow
from infrastructure.db.repositories.base import SqlRepository
from infrastructure.db.tables import ASSETS, CHUNKS, DATA_EXPORTS, STORAGE_DELETIONS

d = STORAGE_DELETIONS.c
TIMESTAMP = DateTime(timezone=True)
#: Keys per statement of `referenced` (bound parameters stay well under the drivers' limits).
REFERENCE_BATCH = 1000


class SqlStorageDeletionRepository(SqlRepository):
    def _now(self, after: timedelta = timedelta(0)) -> ColumnElement[datetime]:
        if self.dialect != "postgresql":
            return literal(datetime.now(UTC) + after, TIMESTAMP)
        now: ColumnElement[datetime] = func.clock_timestamp(type_=TIMESTAMP)
        return now + literal(after, Interval()) if after else now

    async def add(self, keys: Sequence[str], at: datetime) -> None:
        if not keys:
            return
        rows = [{"object_key": k, "created_at": at, "attempts": 0, "next_attempt_at": at} for k in dict.fromkeys(keys)]
        stmt = self.insert(StorageDeletionRow).on_conflict_do_nothing(index_elements=["object_key"])
        await self.session.execute(stmt, rows)

    async def claim(self, *, limit: int, lease: timedelta) -> list[ClaimedDeletion]:
        due = select(d.object_key).where(d.next_attempt_at <= self._now()).order_by(d.next_attempt_at).limit(limit)
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(STORAGE_DELETIONS)
            .where(d.object_key.in_(due.scalar_subquery()))
            .values(attempts=d.attempts + 1, next_attempt_at=self._now(lease))
            .returning(d.object_key, d.attempts)
        )
        rows = (await self.session.execute(stmt)).all()
        return [ClaimedDeletion(object_key=r.object_key, attempts=r.attempts) for r in rows]

    async def done(self, keys: Sequence[str]) -> None:
        if keys:
            await self.session.execute(delete(STORAGE_DELETIONS).where(d.object_key.in_(list(keys))))

    async def retry(self, key: str, *, after: timedelta, error: str) -> None:
        stmt = (
            update(STORAGE_DELETIONS)
            .where(d.object_key == key)
            .values(next_attempt_at=self._now(after), last_error=error[:200])
        )
        await self.session.execute(stmt)

    async def count(self) -> int:
        return int((await self.scalars(select(func.count()).select_from(STORAGE_DELETIONS)))[0])

    async def referenced(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), REFERENCE_BATCH):
            batch = unique[start : start + REFERENCE_BATCH]
            stmt = union_all(
                select(ASSETS.c.object_key).where(ASSETS.c.object_key.in_(batch)),
                select(CHUNKS.c.object_key).where(CHUNKS.c.object_key.in_(batch)),
                select(DATA_EXPORTS.c.object_key).where(DATA_EXPORTS.c.object_key.in_(batch)),
                select(d.object_key).where(d.object_key.in_(batch)),
            )
            found.update(await self.scalars(stmt))
        return found
