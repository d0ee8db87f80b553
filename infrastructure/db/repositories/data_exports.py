"""Data exports: the row of each export, its build claim, and the user's data read in batches for an archive.

Claims follow the generation leases (generation_leases.py): one conditional UPDATE compared on
the database's clock, renewed and settled only while the caller's token is the one stored.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, DateTime, Interval, and_, delete, func, literal, or_, select, text, update

from domain.boards import BoardRole
from domain.data_exports import ACTIVE_EXPORT_STATUSES, DataExport, ExportStatus, export_key
from domain.generations import Generation
from infrastructure.db.models import ACTIVE_EXPORT_PREDICATE
from infrastructure.db.repositories.base import AnyRow, SqlRepository, aware, aware_opt
from infrastructure.db.repositories.generation_rows import generation_of
from infrastructure.db.tables import BOARD_MEMBERS, BOARDS, DATA_EXPORTS, GENERATIONS, USERS

e = DATA_EXPORTS.c
ACTIVE = [s.value for s in ACTIVE_EXPORT_STATUSES]
TIMESTAMP = DateTime(timezone=True)


def export_of(row: AnyRow) -> DataExport:
    return DataExport(
        id=row.id,
        user_id=row.user_id,
        status=ExportStatus(row.status),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        expires_at=aware_opt(row.expires_at),
        object_key=row.object_key,
        size=row.size,
        sha256=row.sha256,
        attempts=row.attempts,
        error_code=row.error_code,
        finished_at=aware_opt(row.finished_at),
    )


class SqlDataExportRepository(SqlRepository):
    def _now(self, after: timedelta = timedelta(0)) -> ColumnElement[datetime]:
        """The database's now plus `after` (SQLite serves one process: its clock is the database's)."""
        if self.dialect != "postgresql":
            return literal(datetime.now(UTC) + after, TIMESTAMP)
        now: ColumnElement[datetime] = func.clock_timestamp(type_=TIMESTAMP)
        return now + literal(after, Interval()) if after else now

    def _unclaimed(self) -> ColumnElement[bool]:
        return or_(e.claimed_until.is_(None), e.claimed_until <= self._now())

    async def _one(self, stmt: object) -> DataExport | None:
        row = await self.row(stmt)  # type: ignore[arg-type]
        return export_of(row) if row else None

    async def delete_for_user(self, user_id: uuid.UUID) -> list[str]:
        x = DATA_EXPORTS.c
        stmt = delete(DATA_EXPORTS).where(x.user_id == user_id).returning(x.id, x.object_key)
        # Every export's key, whatever its status: a BUILDING one has none stored yet, but its worker
        # may be uploading to the deterministic key right now (or died after uploading).
        return [row.object_key or export_key(user_id, row.id) for row in (await self.session.execute(stmt)).all()]

    async def lock_owner(self, user_id: uuid.UUID) -> None:
        if self.dialect == "postgresql":
            # SQLite runs one writer at a time already.
            await self.rows(select(USERS.c.id).where(USERS.c.id == user_id).with_for_update())

    async def add(self, export: DataExport) -> bool:
        stmt = (
            self.insert(DATA_EXPORTS)
            .values(
                id=export.id,
                user_id=export.user_id,
                status=export.status.value,
                attempts=export.attempts,
                created_at=export.created_at,
                updated_at=export.updated_at,
            )
            .on_conflict_do_nothing(index_elements=["user_id"], index_where=text(ACTIVE_EXPORT_PREDICATE))
            .returning(e.id)
        )
        return await self.row(stmt) is not None

    async def get(self, export_id: uuid.UUID) -> DataExport | None:
        return await self._one(select(DATA_EXPORTS).where(e.id == export_id))

    async def active_for(self, user_id: uuid.UUID) -> DataExport | None:
        return await self._one(select(DATA_EXPORTS).where(e.user_id == user_id, e.status.in_(ACTIVE)))

    async def created_since(self, user_id: uuid.UUID, since: datetime) -> list[datetime]:
        stmt = select(e.created_at).where(e.user_id == user_id, e.created_at > since).order_by(e.created_at)
        return [aware(value) for value in await self.scalars(stmt)]

    async def for_user(self, user_id: uuid.UUID, *, limit: int) -> list[DataExport]:
        stmt = select(DATA_EXPORTS).where(e.user_id == user_id).order_by(e.created_at.desc(), e.id.desc()).limit(limit)
        return [export_of(row) for row in await self.rows(stmt)]

    async def claim(self, export_id: uuid.UUID, *, token: uuid.UUID, claim: timedelta) -> DataExport | None:
        stmt = (
            update(DATA_EXPORTS)
            .where(e.id == export_id, e.status.in_(ACTIVE), self._unclaimed())
            .values(
                status=ExportStatus.BUILDING.value,
                claim_token=token,
                claimed_until=self._now(claim),
                attempts=e.attempts + 1,
                updated_at=self._now(),
            )
            .returning(*DATA_EXPORTS.c)
        )
        return await self._one(stmt)

    async def renew(self, export_id: uuid.UUID, *, token: uuid.UUID, claim: timedelta) -> bool:
        stmt = (
            update(DATA_EXPORTS)
            .where(e.id == export_id, e.status == ExportStatus.BUILDING.value, e.claim_token == token)
            .values(claimed_until=self._now(claim))
            .returning(e.id)
        )
        return await self.row(stmt) is not None

    async def release(self, export_id: uuid.UUID, *, token: uuid.UUID, after: timedelta) -> bool:
        stmt = (
            update(DATA_EXPORTS)
            .where(e.id == export_id, e.status == ExportStatus.BUILDING.value, e.claim_token == token)
            .values(claim_token=None, claimed_until=self._now(after))
            .returning(e.id)
        )
        return await self.row(stmt) is not None

    async def settle_ready(
        self,
        export_id: uuid.UUID,
        *,
        token: uuid.UUID,
        object_key: str,
        size: int,
        sha256: str,
        at: datetime,
        expires_at: datetime,
    ) -> DataExport | None:
        stmt = (
            update(DATA_EXPORTS)
            .where(e.id == export_id, e.status == ExportStatus.BUILDING.value, e.claim_token == token)
            .values(
                status=ExportStatus.READY.value,
                object_key=object_key,
                size=size,
                sha256=sha256,
                claim_token=None,
                claimed_until=None,
                updated_at=at,
                finished_at=at,
                expires_at=expires_at,
            )
            .returning(*DATA_EXPORTS.c)
        )
        return await self._one(stmt)

    async def settle_failed(
        self, export_id: uuid.UUID, *, code: str, at: datetime, token: uuid.UUID | None = None
    ) -> DataExport | None:
        held = e.claim_token == token if token is not None else literal(True)
        stmt = (
            update(DATA_EXPORTS)
            .where(e.id == export_id, e.status.in_(ACTIVE), held)
            .values(
                status=ExportStatus.FAILED.value,
                error_code=code,
                claim_token=None,
                claimed_until=None,
                updated_at=at,
                finished_at=at,
            )
            .returning(*DATA_EXPORTS.c)
        )
        return await self._one(stmt)

    async def due(self, *, created_before: datetime, limit: int) -> list[uuid.UUID]:
        never_claimed = and_(e.claimed_until.is_(None), e.created_at < created_before)
        ran_out = and_(e.claimed_until.is_not(None), e.claimed_until <= self._now())
        stmt = select(e.id).where(e.status.in_(ACTIVE), or_(never_claimed, ran_out)).order_by(e.created_at).limit(limit)
        return list(await self.scalars(stmt))

    async def expired(self, now: datetime, *, limit: int) -> list[DataExport]:
        stmt = (
            select(DATA_EXPORTS)
            .where(e.status == ExportStatus.READY.value, e.expires_at <= now)
            .order_by(e.expires_at)
            .limit(limit)
        )
        return [export_of(row) for row in await self.rows(stmt)]

    async def mark_expired(self, export_id: uuid.UUID, at: datetime) -> bool:
        stmt = (
            update(DATA_EXPORTS)
            .where(e.id == export_id, e.status == ExportStatus.READY.value)
            .values(status=ExportStatus.EXPIRED.value, updated_at=at)
            .returning(e.id)
        )
        return await self.row(stmt) is not None

    async def generations_of(
        self, user_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Generation]:
        g = GENERATIONS.c
        stmt = select(GENERATIONS).where(g.user_id == user_id)
        if after is not None:
            created, ident = after
            stmt = stmt.where(or_(g.created_at > created, and_(g.created_at == created, g.id > ident)))
        stmt = stmt.order_by(g.created_at, g.id).limit(limit)
        return [generation_of(row) for row in await self.rows(stmt)]

    async def board_roles(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str, datetime, BoardRole]]:
        m = BOARD_MEMBERS.c
        stmt = (
            select(BOARDS.c.id, BOARDS.c.name, BOARDS.c.created_at, m.role)
            .join(BOARD_MEMBERS, m.board_id == BOARDS.c.id)
            .where(m.user_id == user_id)
            .order_by(BOARDS.c.created_at, BOARDS.c.id)
        )
        return [(row.id, row.name, aware(row.created_at), BoardRole(row.role)) for row in await self.rows(stmt)]
