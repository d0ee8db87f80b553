"""Generations, their inputs, output assets and provider tasks."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select, update

from domain.generations import ACTIVE_STATUSES, Generation, GenerationStatus
from domain.pagination import Page, PageRequest
from domain.repositories import Asset, GenerationFilter
from infrastructure.db.models import AssetRow, GenerationInputRow, GenerationRow, ProviderTaskRow
from infrastructure.db.repositories.base import SqlRepository, aware, aware_opt, keyset


def _generation(row: GenerationRow) -> Generation:
    return Generation(
        id=row.id,
        user_id=row.user_id,
        model_id=row.model_id,
        prompt=row.prompt,
        status=GenerationStatus(row.status),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        params=dict(row.params or {}),
        board_id=row.board_id,
        preset_id=row.preset_id,
        progress=row.progress,
        error_code=row.error_code,
        error_message=row.error_message,
        reserved_credits=row.reserved_credits,
        charged_credits=row.charged_credits,
        provider_task_id=row.provider_task_id,
        idempotency_key=row.idempotency_key,
        finished_at=aware_opt(row.finished_at),
        deadline_at=aware_opt(row.deadline_at),
        submit_attempts=row.submit_attempts,
        next_attempt_at=aware_opt(row.next_attempt_at),
    )


def _asset(row: AssetRow) -> Asset:
    return Asset(
        id=row.id,
        generation_id=row.generation_id,
        kind=row.kind,
        position=row.position,
        object_key=row.object_key,
        content_type=row.content_type,
        size=row.size,
        created_at=aware(row.created_at),
        sha256=row.sha256,
    )


class SqlGenerationRepository(SqlRepository):
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
        return _generation(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Generation]:
        if not ids:
            return []
        stmt = select(GenerationRow).where(GenerationRow.id.in_(set(ids)))
        return [_generation(r) for r in (await self.session.execute(stmt)).scalars()]

    async def get_by_idempotency_key(self, user_id: uuid.UUID, key: str) -> Generation | None:
        stmt = select(GenerationRow).where(GenerationRow.user_id == user_id, GenerationRow.idempotency_key == key)
        row = (await self.session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()
        return _generation(row) if row else None

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
        return _generation(row) if row else None

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
        return _generation(row) if row else None

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
        return Page([_generation(r) for r in rows[: page.first]], len(rows) > page.first)

    async def active(self, *, limit: int, polled_before: datetime | None = None) -> list[Generation]:
        stmt = (
            select(GenerationRow)
            .where(GenerationRow.status.in_([s.value for s in ACTIVE_STATUSES]))
            .order_by(GenerationRow.updated_at)
            .limit(limit)
        )
        if polled_before is not None:
            stmt = stmt.where(GenerationRow.updated_at < polled_before)
        return [_generation(r) for r in (await self.session.execute(stmt)).scalars()]

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
        return [_generation(r) for r in (await self.session.execute(stmt)).scalars()]

    async def add_inputs(self, generation_id: uuid.UUID, chunk_ids: Sequence[uuid.UUID]) -> None:
        if chunk_ids:
            rows = [{"generation_id": generation_id, "position": i, "chunk_id": c} for i, c in enumerate(chunk_ids)]
            await self.session.execute(self.insert(GenerationInputRow), rows)

    async def inputs_of(self, generation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        out: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        if generation_ids:
            stmt = (
                select(GenerationInputRow.generation_id, GenerationInputRow.chunk_id)
                .where(GenerationInputRow.generation_id.in_(set(generation_ids)))
                .order_by(GenerationInputRow.generation_id, GenerationInputRow.position)
            )
            for gen_id, chunk_id in (await self.session.execute(stmt)).all():
                out[gen_id].append(chunk_id)
        return dict(out)

    async def add_asset(self, asset: Asset) -> bool:
        stmt = (
            self.insert(AssetRow)
            .values(
                id=asset.id,
                generation_id=asset.generation_id,
                kind=asset.kind,
                position=asset.position,
                object_key=asset.object_key,
                content_type=asset.content_type,
                size=asset.size,
                sha256=asset.sha256,
                created_at=asset.created_at,
            )
            .on_conflict_do_nothing(index_elements=["object_key"])
            .returning(AssetRow.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def assets_of(self, generation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Asset]]:
        out: dict[uuid.UUID, list[Asset]] = defaultdict(list)
        if generation_ids:
            stmt = (
                select(AssetRow)
                .where(AssetRow.generation_id.in_(set(generation_ids)))
                .order_by(AssetRow.generation_id, AssetRow.kind, AssetRow.position)
            )
            for row in (await self.session.execute(stmt)).scalars():
                out[row.generation_id].append(_asset(row))
        return dict(out)

    async def get_asset(self, asset_id: uuid.UUID) -> Asset | None:
        row = await self.session.get(AssetRow, asset_id)
        return _asset(row) if row else None

    async def record_provider_task(
        self, generation_id: uuid.UUID, provider: str, external_id: str, state: str, raw: dict[str, Any], at: datetime
    ) -> None:
        values = {"state": state, "raw": raw, "last_polled_at": at}
        stmt = (
            self.insert(ProviderTaskRow)
            .values(
                id=uuid.uuid4(),
                generation_id=generation_id,
                provider=provider,
                external_id=external_id,
                attempts=1,
                created_at=at,
                **values,
            )
            .on_conflict_do_update(
                index_elements=["provider", "external_id"],
                set_={**values, "attempts": ProviderTaskRow.attempts + 1},
            )
        )
        await self.session.execute(stmt)

    async def find_by_provider_task(self, provider: str, external_id: str) -> Generation | None:
        stmt = (
            select(GenerationRow)
            .join(ProviderTaskRow, ProviderTaskRow.generation_id == GenerationRow.id)
            .where(ProviderTaskRow.provider == provider, ProviderTaskRow.external_id == external_id)
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _generation(row) if row else None

    async def chunk_in_active_use(self, chunk_id: uuid.UUID) -> bool:
        stmt = select(
            exists().where(
                GenerationInputRow.chunk_id == chunk_id,
                GenerationInputRow.generation_id == GenerationRow.id,
                GenerationRow.status.in_([s.value for s in ACTIVE_STATUSES]),
            )
        )
        return bool((await self.session.execute(stmt)).scalar())

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
        return _generation(row) if row else None

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
        return [_generation(r) for r in (await self.session.execute(stmt)).scalars()]

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
