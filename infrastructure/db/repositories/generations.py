"""Generations: adding, reading, paging and moving them through their statuses.

Their inputs, output assets and provider tasks are in ``generation_attachments``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update

from domain.generations import ACTIVE_STATUSES, Generation, GenerationStatus
from domain.pagination import Page, PageRequest
from domain.repositories import GenerationFilter
from infrastructure.db.models import GenerationRow
from infrastructure.db.repositories.base import keyset
from infrastructure.db.repositories.generation_attachments import SqlGenerationAttachments
from infrastructure.db.repositories.generation_rows import generation_of


class SqlGenerationRepository(SqlGenerationAttachments):
    """The generation rows; what hangs off them (inputs, assets, provider tasks) is inherited."""

    async def add(self, generation: Generation) -> bool:
        g = generation
        table = GenerationRow.__table__
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
        row = await self.session.get(GenerationRow, generation_id, populate_existing=True)
        return generation_of(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Generation]:
        if not ids:
            return []
        stmt = select(GenerationRow).where(GenerationRow.id.in_(set(ids)))
        return [generation_of(r) for r in (await self.session.execute(stmt)).scalars()]

    async def get_by_idempotency_key(self, user_id: uuid.UUID, key: str) -> Generation | None:
        stmt = select(GenerationRow).where(GenerationRow.user_id == user_id, GenerationRow.idempotency_key == key)
        row = (await self.session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()
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
            update(GenerationRow)
            .where(GenerationRow.id == generation_id, GenerationRow.status.in_([s.value for s in sources]))
            .values(**values)
            .returning(GenerationRow)
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return generation_of(row) if row else None

    async def set_progress(self, generation_id: uuid.UUID, progress: float, at: datetime) -> Generation | None:
        stmt = (
            update(GenerationRow)
            .where(
                GenerationRow.id == generation_id,
                GenerationRow.status == GenerationStatus.PROCESSING.value,
                GenerationRow.progress < progress,
            )
            .values(progress=progress, updated_at=at)
            .returning(GenerationRow)
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return generation_of(row) if row else None

    async def page(
        self, *, viewer_id: uuid.UUID, board_ids: Sequence[uuid.UUID], flt: GenerationFilter, page: PageRequest
    ) -> Page[Generation]:
        stmt = select(GenerationRow)
        if flt.board_id is not None:
            stmt = stmt.where(GenerationRow.board_id == flt.board_id)
        elif board_ids:
            stmt = stmt.where(or_(GenerationRow.user_id == viewer_id, GenerationRow.board_id.in_(list(board_ids))))
        else:
            stmt = stmt.where(GenerationRow.user_id == viewer_id)
        if flt.statuses:
            stmt = stmt.where(GenerationRow.status.in_([s.value for s in flt.statuses]))
        if flt.model_id is not None:
            stmt = stmt.where(GenerationRow.model_id == flt.model_id)
        stmt = keyset(stmt, page, GenerationRow.created_at, GenerationRow.id)
        rows = list((await self.session.execute(stmt)).scalars())
        return Page([generation_of(r) for r in rows[: page.first]], len(rows) > page.first)

    async def active(self, *, limit: int, polled_before: datetime | None = None) -> list[Generation]:
        stmt = (
            select(GenerationRow)
            .where(GenerationRow.status.in_([s.value for s in ACTIVE_STATUSES]))
            .order_by(GenerationRow.updated_at)
            .limit(limit)
        )
        if polled_before is not None:
            stmt = stmt.where(GenerationRow.updated_at < polled_before)
        return [generation_of(r) for r in (await self.session.execute(stmt)).scalars()]

    async def past_deadline(self, now: datetime, *, limit: int) -> list[Generation]:
        stmt = (
            select(GenerationRow)
            .where(
                GenerationRow.status.in_([s.value for s in ACTIVE_STATUSES]),
                GenerationRow.deadline_at.is_not(None),
                GenerationRow.deadline_at < now,
            )
            .order_by(GenerationRow.deadline_at)
            .limit(limit)
        )
        return [generation_of(r) for r in (await self.session.execute(stmt)).scalars()]

    async def transition_if(
        self,
        generation_id: uuid.UUID,
        *,
        sources: frozenset[GenerationStatus],
        target: GenerationStatus,
        at: datetime,
        expect: dict[str, Any],
        **fields: Any,
    ) -> Generation | None:
        values: dict[str, Any] = {"status": target.value, "updated_at": at, **fields}
        if target.is_final:
            values["finished_at"] = at
        conditions = [GenerationRow.id == generation_id, GenerationRow.status.in_([s.value for s in sources])]
        for name, value in expect.items():
            column = getattr(GenerationRow, name)
            conditions.append(column.is_(None) if value is None else column == value)
        stmt = (
            update(GenerationRow)
            .where(*conditions)
            .values(**values)
            .returning(GenerationRow)
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return generation_of(row) if row else None

    async def due(self, now: datetime, *, queued_before: datetime, limit: int) -> list[Generation]:
        waiting_since = func.coalesce(GenerationRow.next_attempt_at, GenerationRow.updated_at)
        stmt = (
            select(GenerationRow)
            .where(
                GenerationRow.status.in_([s.value for s in ACTIVE_STATUSES]),
                or_(GenerationRow.next_attempt_at.is_(None), GenerationRow.next_attempt_at <= now),
                or_(
                    GenerationRow.status != GenerationStatus.QUEUED.value,
                    GenerationRow.next_attempt_at.is_not(None),
                    GenerationRow.updated_at < queued_before,
                ),
            )
            .order_by(waiting_since, GenerationRow.id)
            .limit(limit)
        )
        return [generation_of(r) for r in (await self.session.execute(stmt)).scalars()]

    async def defer(self, generation_ids: Sequence[uuid.UUID], until: datetime) -> None:
        if not generation_ids:
            return
        stmt = (
            update(GenerationRow)
            .where(
                GenerationRow.id.in_(set(generation_ids)),
                GenerationRow.status == GenerationStatus.PROCESSING.value,
            )
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)
