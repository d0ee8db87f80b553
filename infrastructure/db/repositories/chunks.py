"""Chunk rows (the objects themselves live in storage)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update

from domain.chunks import Chunk, ChunkStatus
from domain.pagination import Page, PageRequest
from infrastructure.db.models import ChunkRow
from infrastructure.db.repositories.base import AnyRow, SqlRepository, aware, keyset
from infrastructure.db.tables import CHUNKS, USERS


def _chunk(row: AnyRow) -> Chunk:
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
        row = await self.row(select(CHUNKS).where(CHUNKS.c.id == chunk_id))
        return _chunk(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Chunk]:
        return [_chunk(r) for r in await self.by_ids(CHUNKS, ids)]

    async def page(self, user_id: uuid.UUID, page: PageRequest) -> Page[Chunk]:
        c = CHUNKS.c
        rows = await self.rows(keyset(select(CHUNKS).where(c.user_id == user_id), page, c.created_at, c.id))
        return page.cut([_chunk(r) for r in rows])

    async def usage(self, user_id: uuid.UUID, *, lock: bool = False) -> tuple[int, int]:
        if lock and self.dialect == "postgresql":
            # Two uploads of one user must not both pass the quota on the same old usage:
            # the user row lock makes the check-then-insert of each one atomic.
            await self.rows(select(USERS.c.id).where(USERS.c.id == user_id).with_for_update())
        c = CHUNKS.c
        stmt = select(func.count(c.id), func.coalesce(func.sum(c.size), 0)).where(c.user_id == user_id)
        count, total = (await self.rows(stmt))[0]
        return int(count), int(total)

    async def mark_ready(self, chunk_id: uuid.UUID, *, object_key: str, size: int, sha256: str) -> Chunk | None:
        # One conditional UPDATE: of two completions racing, exactly one turns the row READY.
        stmt = (
            update(CHUNKS)
            .where(CHUNKS.c.id == chunk_id, CHUNKS.c.status == ChunkStatus.PENDING.value)
            .values(status=ChunkStatus.READY.value, object_key=object_key, size=size, sha256=sha256)
            .returning(*CHUNKS.c)
        )
        row = await self.row(stmt)
        return _chunk(row) if row else None

    async def delete(self, chunk_id: uuid.UUID) -> bool:
        stmt = delete(ChunkRow).where(ChunkRow.id == chunk_id).returning(ChunkRow.id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def delete_all_of(self, user_id: uuid.UUID) -> list[str]:
        stmt = delete(ChunkRow).where(ChunkRow.user_id == user_id).returning(ChunkRow.object_key)
        return list((await self.session.execute(stmt)).scalars().all())

    async def stale_pending(self, before: datetime, *, limit: int) -> list[Chunk]:
        c = CHUNKS.c
        stmt = (
            select(CHUNKS)
            .where(c.status == ChunkStatus.PENDING.value, c.created_at < before)
            .order_by(c.created_at)
            .limit(limit)
        )
        return [_chunk(r) for r in await self.rows(stmt)]
