"""What hangs off a generation: its input chunks, its output assets and its provider tasks."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select

from domain.errors import ProviderTaskTaken
from domain.generations import ACTIVE_STATUSES, Generation
from domain.repositories import Asset
from infrastructure.db.models import AssetRow, GenerationInputRow, ProviderTaskRow
from infrastructure.db.repositories.base import SqlRepository
from infrastructure.db.repositories.generation_rows import asset_of, generation_of
from infrastructure.db.tables import ASSETS, GENERATION_INPUTS, GENERATIONS


class SqlGenerationAttachments(SqlRepository):
    """The part of the generation repository over the input, asset and provider task tables."""

    async def add_inputs(self, generation_id: uuid.UUID, chunk_ids: Sequence[uuid.UUID]) -> None:
        if chunk_ids:
            rows = [{"generation_id": generation_id, "position": i, "chunk_id": c} for i, c in enumerate(chunk_ids)]
            await self.session.execute(self.insert(GenerationInputRow), rows)

    async def inputs_of(self, generation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        out: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        if generation_ids:
            i = GENERATION_INPUTS.c
            stmt = (
                select(i.generation_id, i.chunk_id)
                .where(i.generation_id.in_(set(generation_ids)))
                .order_by(i.generation_id, i.position)
            )
            for row in await self.rows(stmt):
                out[row.generation_id].append(row.chunk_id)
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
                width=asset.width,
                height=asset.height,
                duration_seconds=asset.duration_seconds,
                source_id=asset.source_id,
                thumbnail_state=asset.thumbnail_state,
                thumbnail_attempts=asset.thumbnail_attempts,
                thumbnail_error=asset.thumbnail_error,
            )
            .on_conflict_do_nothing(index_elements=["object_key"])
            .returning(AssetRow.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def assets_of(self, generation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Asset]]:
        out: dict[uuid.UUID, list[Asset]] = defaultdict(list)
        if generation_ids:
            a = ASSETS.c
            stmt = (
                select(ASSETS)
                .where(a.generation_id.in_(set(generation_ids)))
                .order_by(a.generation_id, a.kind, a.position)
            )
            for row in await self.rows(stmt):
                out[row.generation_id].append(asset_of(row))
        return dict(out)

    async def get_asset(self, asset_id: uuid.UUID) -> Asset | None:
        row = await self.row(select(ASSETS).where(ASSETS.c.id == asset_id))
        return asset_of(row) if row else None

    async def get_assets(self, ids: Sequence[uuid.UUID]) -> list[Asset]:
        if not ids:
            return []
        return [asset_of(r) for r in await self.rows(select(ASSETS).where(ASSETS.c.id.in_(set(ids))))]

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
                where=ProviderTaskRow.generation_id == generation_id,
            )
            .returning(ProviderTaskRow.id)
        )
        if (await self.session.execute(stmt)).first() is None:
            raise ProviderTaskTaken(provider, external_id)  # the row is another generation's: left as it is

    async def find_by_provider_task(self, provider: str, external_id: str) -> Generation | None:
        stmt = (
            select(GENERATIONS)
            .join(ProviderTaskRow, ProviderTaskRow.generation_id == GENERATIONS.c.id)
            .where(ProviderTaskRow.provider == provider, ProviderTaskRow.external_id == external_id)
        )
        row = await self.row(stmt)
        return generation_of(row) if row else None

    async def chunk_in_active_use(self, chunk_id: uuid.UUID) -> bool:
        stmt = select(
            exists().where(
                GENERATION_INPUTS.c.chunk_id == chunk_id,
                GENERATION_INPUTS.c.generation_id == GENERATIONS.c.id,
                GENERATIONS.c.status.in_([s.value for s in ACTIVE_STATUSES]),
            )
        )
        return bool((await self.scalars(stmt))[0])
