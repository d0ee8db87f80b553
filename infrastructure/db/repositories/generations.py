"""Generations: adding, reading, paging and moving them through their statuses.

Their inputs, output assets and provider tasks are in ``generation_attachments``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, or_, select, union_all, update

from domain.catalogue import deadline_seconds_of
from domain.generations import ACTIVE_STATUSES, Generation, GenerationStatus
from domain.pagination import Page, PageRequest
from domain.repositories import GenerationFilter
from infrastructure.db.repositories.base import keyset
from infrastructure.db.repositories.generation_attachments import SqlGenerationAttachments
from infrastructure.db.repositories.generation_deletions import SqlGenerationDeletions
from infrastructure.db.repositories.generation_provider_attempts import SqlGenerationProviderAttempts
from infrastructure.db.repositories.generation_rows import generation_of
from infrastructure.db.repositories.generation_thumbnails import SqlGenerationThumbnails
from infrastructure.db.tables import BOARD_MEMBERS, GENERATIONS, MODELS


class SqlGenerationRepository(
    SqlGenerationThumbnails, SqlGenerationAttachments, SqlGenerationProviderAttempts, SqlGenerationDeletions
):
    """The generation rows; their leases, their outputs' thumbnails, what hangs off them (inputs, assets,
    provider tasks and attempts) and their deletion are inherited."""

    async def add(self, generation: Generation) -> bool:
        g = generation
        table = GENERATIONS
        if g.idempotency_key is not None:
            stmt = self.prepared(
                "generation.add.keyed",
                lambda insert: (
                    insert(table)
                    .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
                    .returning(table.c.id)
                ),
            )
        else:
            stmt = self.prepared("generation.add", lambda insert: insert(table).returning(table.c.id))
        params = {
            "id": g.id,
            "user_id": g.user_id,
            "board_id": g.board_id,
            "model_id": g.model_id,
            "preset_id": g.preset_id,
            "prompt": g.prompt,
            "params": g.params,
            "status": g.status.value,
            "progress": g.progress,
            "reserved_credits": g.reserved_credits,
            "charged_credits": g.charged_credits,
            "idempotency_key": g.idempotency_key,
            "deadline_at": g.deadline_at,
            "submit_attempts": g.submit_attempts,
            "next_attempt_at": g.next_attempt_at,
            "created_at": g.created_at,
            "updated_at": g.updated_at,
        }
        result = await self.core_execute(stmt, params)
        return result.scalar_one_or_none() is not None

    async def get(self, generation_id: uuid.UUID) -> Generation | None:
        row = await self.row(select(GENERATIONS).where(GENERATIONS.c.id == generation_id))
        return generation_of(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Generation]:
        return [generation_of(r) for r in await self.by_ids(GENERATIONS, ids)]

    async def get_by_idempotency_key(self, user_id: uuid.UUID, key: str) -> Generation | None:
        g = GENERATIONS.c
        row = await self.row(select(GENERATIONS).where(g.user_id == user_id, g.idempotency_key == key))
        return generation_of(row) if row else None

    async def transition(
        self,
        generation_id: uuid.UUID,
        *,
        sources: frozenset[GenerationStatus],
        target: GenerationStatus,
        at: datetime,
        **fields: Any,
    ) -> Generation | None:
        values: dict[str, Any] = {"status": target.value, "updated_at": at, **fields}
        if target.is_final:
            values["finished_at"] = at
        stmt = (
            update(GENERATIONS)
            .where(GENERATIONS.c.id == generation_id, GENERATIONS.c.status.in_([s.value for s in sources]))
            .values(**values)
            .returning(*GENERATIONS.c)
        )
        row = await self.row(stmt)
        return generation_of(row) if row else None

    async def set_progress(self, generation_id: uuid.UUID, progress: float, at: datetime) -> Generation | None:
        stmt = (
            update(GENERATIONS)
            .where(
                GENERATIONS.c.id == generation_id,
                GENERATIONS.c.status == GenerationStatus.PROCESSING.value,
                GENERATIONS.c.progress < progress,
            )
            .values(progress=progress, updated_at=at)
            .returning(*GENERATIONS.c)
        )
        row = await self.row(stmt)
        return generation_of(row) if row else None

    async def page(self, *, viewer_id: uuid.UUID, flt: GenerationFilter, page: PageRequest) -> Page[Generation]:
        g = GENERATIONS.c
        stmt = select(GENERATIONS).where(_visible(viewer_id, flt.board_id))
        if flt.statuses:
            stmt = stmt.where(g.status.in_([s.value for s in flt.statuses]))
        if flt.model_id is not None:
            stmt = stmt.where(g.model_id == flt.model_id)
        rows = await self.rows(keyset(stmt, page, g.created_at, g.id))
        return page.cut([generation_of(r) for r in rows])

    async def board_pages(
        self, *, viewer_id: uuid.UUID, pages: Sequence[tuple[uuid.UUID, PageRequest]]
    ) -> list[Page[Generation]]:
        if not pages:
            return []
        g = GENERATIONS.c
        parts = [
            keyset(
                select(literal(i).label("part"), *GENERATIONS.c).where(_visible(viewer_id, board_id)),
                page,
                g.created_at,
                g.id,
            ).subquery()
            for i, (board_id, page) in enumerate(pages)
        ]
        union = union_all(*(select(part) for part in parts)).subquery()
        stmt = select(union).order_by(union.c.part, union.c.created_at.desc(), union.c.id.desc())
        found: list[list[Generation]] = [[] for _ in pages]
        for row in await self.rows(stmt):
            found[row.part].append(generation_of(row))
        for items, (_, page) in zip(found, pages, strict=True):
            if page.backward:  # read oldest first: `cut` expects them so
                items.reverse()
        return [page.cut(items) for items, (_, page) in zip(found, pages, strict=True)]

    async def active(self, *, limit: int, polled_before: datetime | None = None) -> list[Generation]:
        stmt = (
            select(GENERATIONS)
            .where(GENERATIONS.c.status.in_([s.value for s in ACTIVE_STATUSES]))
            .order_by(GENERATIONS.c.updated_at)
            .limit(limit)
        )
        if polled_before is not None:
            stmt = stmt.where(GENERATIONS.c.updated_at < polled_before)
        return [generation_of(r) for r in await self.rows(stmt)]

    async def past_deadline(self, now: datetime, *, limit: int) -> list[Generation]:
        active = GENERATIONS.c.status.in_([s.value for s in ACTIVE_STATUSES])
        stmt = (
            select(GENERATIONS)
            .where(active, GENERATIONS.c.deadline_at.is_not(None), GENERATIONS.c.deadline_at < now)
            .order_by(GENERATIONS.c.deadline_at)
            .limit(limit)
        )
        found = [generation_of(r) for r in await self.rows(stmt)]
        if len(found) >= limit:
            return found
        # Rows from before deadlines (NULL): their model's deadline from their creation, read in Python (it is
        # in the model's capabilities), oldest first. Without this their waits, bounded by the deadline, never end.
        undated = (
            select(GENERATIONS, MODELS.c.capabilities.label("model_capabilities"))
            .outerjoin(MODELS, MODELS.c.id == GENERATIONS.c.model_id)
            .where(active, GENERATIONS.c.deadline_at.is_(None), GENERATIONS.c.created_at < now)
            .order_by(GENERATIONS.c.created_at, GENERATIONS.c.id)
            .limit(limit)
        )
        for row in await self.rows(undated):
            generation = generation_of(row)
            if generation.created_at + timedelta(seconds=deadline_seconds_of(row.model_capabilities)) < now:
                found.append(generation)
        return found[:limit]

    async def transition_if(
        self,
        generation_id: uuid.UUID,
        *,
        sources: frozenset[GenerationStatus],
        target: GenerationStatus,
        at: datetime,
        expect: dict[str, Any],
        unheld: bool = False,
        **fields: Any,
    ) -> Generation | None:
        values: dict[str, Any] = {"status": target.value, "updated_at": at, **fields}
        if target.is_final:
            values["finished_at"] = at
        conditions = [GENERATIONS.c.id == generation_id, GENERATIONS.c.status.in_([s.value for s in sources])]
        for name, value in expect.items():
            column = GENERATIONS.c[name]
            conditions.append(column.is_(None) if value is None else column == value)
        if unheld:
            conditions.append(self._not_held())
        stmt = update(GENERATIONS).where(*conditions).values(**values).returning(*GENERATIONS.c)
        row = await self.row(stmt)
        return generation_of(row) if row else None

    async def due(self, now: datetime, *, queued_before: datetime, limit: int) -> list[Generation]:
        waiting_since = func.coalesce(GENERATIONS.c.next_attempt_at, GENERATIONS.c.updated_at)
        stmt = (
            select(GENERATIONS)
            .where(
                GENERATIONS.c.status.in_([s.value for s in ACTIVE_STATUSES]),
                or_(GENERATIONS.c.next_attempt_at.is_(None), GENERATIONS.c.next_attempt_at <= now),
                or_(
                    GENERATIONS.c.status != GenerationStatus.QUEUED.value,
                    GENERATIONS.c.next_attempt_at.is_not(None),
                    GENERATIONS.c.updated_at < queued_before,
                ),
            )
            .order_by(waiting_since, GENERATIONS.c.id)
            .limit(limit)
        )
        return [generation_of(r) for r in await self.rows(stmt)]


def _visible(viewer_id: uuid.UUID, board_id: uuid.UUID | None) -> ColumnElement[bool]:
    """The viewer's own generations and their boards' (one board's, when given and they are a member)."""
    g, m = GENERATIONS.c, BOARD_MEMBERS.c
    if board_id is not None:
        member = exists().where(m.board_id == board_id, m.user_id == viewer_id)
        return and_(g.board_id == board_id, member)
    return or_(g.user_id == viewer_id, g.board_id.in_(select(m.board_id).where(m.user_id == viewer_id)))
