"""Chunk rows (the objects themselves live in storage)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update

from domain.chunks import Chunk, ChunkStatus
from domain.pagination import Page, PageRequest
from infrastructure.db.models import ChunkRow, UserRow
from infrastructure.db.repositories.base import SqlRepository, aware, keyset


def _chunk(row: ChunkRow) -> Chunk:
    return Chunk(
        id=row.id,
        user_id=row.user_id,
        object_key=row.object_key,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        status=ChunkStatus(row.status),
        created_at=aware(row.created_at),
        sha256=row.sha256,
    )


class SqlChunkRepository(SqlRepository):
    async def add(self, chunk: Chunk) -> None:
        self.session.add(
            ChunkRow(
                id=chunk.id,
                user_id=chunk.user_id,
                object_key=chunk.object_key,
                filename=chunk.filename,
                content_type=chunk.content_type,
                size=chunk.size,
                sha256=chunk.sha256,
                status=chunk.status.value,
                created_at=chunk.created_at,
            )
        )
        await self.session.flush()

    async def get(self, chunk_id: uuid.UUID) -> Chunk | None:
        row = await self.session.get(ChunkRow, chunk_id, populate_existing=True)
        return _chunk(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Chunk]:
        if not ids:
            return []
        rows = (await self.session.execute(select(ChunkRow).where(ChunkRow.id.in_(set(ids))))).scalars()
        return [_chunk(r) for r in rows]

    async def page(self, user_id: uuid.UUID, page: PageRequest) -> Page[Chunk]:
        stmt = keyset(select(ChunkRow).where(ChunkRow.user_id == user_id), page, ChunkRow.created_at, ChunkRow.id)
        rows = list((await self.session.execute(stmt)).scalars())
        return Page([_chunk(r) for r in rows[: page.first]], len(rows) > page.first)

    async def usage(self, user_id: uuid.UUID, *, lock: bool = False) -> tuple[int, int]:
        if lock and self.dialect == "postgresql":
            # Two uploads of one user must not both pass the quota on the same old usage:
            # the user row lock makes the check-then-insert of each one atomic.
            await self.session.execute(select(UserRow.id).where(UserRow.id == user_id).with_for_update())
        stmt = select(func.count(ChunkRow.id), func.coalesce(func.sum(ChunkRow.size), 0)).where(
            ChunkRow.user_id == user_id
        )
        count, total = (await self.session.execute(stmt)).one()
        return int(count), int(total)

    async def mark_ready(self, chunk_id: uuid.UUID, *, object_key: str, size: int, sha256: str) -> Chunk | None:
        # One conditional UPDATE: of two completions racing, exactly one turns the row READY.
        stmt = (
            update(ChunkRow)
            .where(ChunkRow.id == chunk_id, ChunkRow.status == ChunkStatus.PENDING.value)
            .values(status=ChunkStatus.READY.value, object_key=object_key, size=size, sha256=sha256)
            .returning(ChunkRow)
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _chunk(row) if row else None

    async def delete(self, chunk_id: uuid.UUID) -> bool:
        stmt = delete(ChunkRow).where(ChunkRow.id == chunk_id).returning(ChunkRow.id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def stale_pending(self, before: datetime, *, limit: int) -> list[Chunk]:
        stmt = (
            select(ChunkRow)
            .where(ChunkRow.status == ChunkStatus.PENDING.value, ChunkRow.created_at < before)
            .order_by(ChunkRow.created_at)
            .limit(limit)
        )
        return [_chunk(r) for r in (await self.session.execute(stmt)).scalars()]
