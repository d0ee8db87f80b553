"""The thumbnails of a generation's outputs: claiming one, settling it, counting what is left.

Claims follow the generation leases (generation_leases.py): one conditional UPDATE on the
database's clock, so two workers never both hold one output; each claim carries a token, and
renewing or releasing it (and settling under it) needs that token, so a worker whose claim ran
out and was taken over learns it at its next renewal. The claim only spares duplicate work; what counts is `settle_thumbnail`, conditional on the output still being
pending, so only one settlement of an output ever decrements its generation's count.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update

from domain.generations import Generation
from domain.media import MediaInfo, ThumbnailState
from domain.repositories import Asset
from infrastructure.db.repositories.generation_leases import SqlGenerationLeases
from infrastructure.db.repositories.generation_rows import asset_of, generation_of
from infrastructure.db.tables import ASSETS, GENERATIONS

a = ASSETS.c
PENDING = ThumbnailState.PENDING.value


class SqlGenerationThumbnails(SqlGenerationLeases):
    def _unclaimed(self) -> ColumnElement[bool]:
        return or_(a.thumbnail_claimed_until.is_(None), a.thumbnail_claimed_until <= self.database_time())

    async def claim_thumbnail(self, asset_id: uuid.UUID, *, token: uuid.UUID, claim: timedelta) -> Asset | None:
        stmt = (
            update(ASSETS)
            .where(a.id == asset_id, a.thumbnail_state == PENDING, self._unclaimed())
            .values(
                thumbnail_claimed_until=self.database_time(claim),
                thumbnail_claim_token=token,
                thumbnail_attempts=a.thumbnail_attempts + 1,
            )
            .returning(*ASSETS.c)
        )
        row = await self.row(stmt)
        return asset_of(row) if row else None

    async def renew_thumbnail(self, asset_id: uuid.UUID, *, token: uuid.UUID, claim: timedelta) -> bool:
        stmt = (
            update(ASSETS)
            .where(a.id == asset_id, a.thumbnail_state == PENDING, a.thumbnail_claim_token == token)
            .values(thumbnail_claimed_until=self.database_time(claim))
            .returning(a.id)
        )
        return await self.row(stmt) is not None

    async def release_thumbnail(self, asset_id: uuid.UUID, *, token: uuid.UUID, after: timedelta) -> None:
        stmt = (
            update(ASSETS)
            .where(a.id == asset_id, a.thumbnail_state == PENDING, a.thumbnail_claim_token == token)
            .values(thumbnail_claimed_until=self.database_time(after), thumbnail_claim_token=None)
        )
        connection = await self.session.connection()
        await connection.execute(stmt)

    async def settle_thumbnail(
        self,
        asset_id: uuid.UUID,
        *,
        state: str,
        error: str | None = None,
        measured: MediaInfo | None = None,
        content_type: str | None = None,
        token: uuid.UUID | None = None,
    ) -> bool:
        # The generation row first, as deleting a generation locks it (FOR UPDATE) before its cascade
        # reaches the assets: settling the other way round (asset row, then the THUMBNAIL insert's key
        # share on the generation) could deadlock with a deletion on PostgreSQL. SQLite locks the whole file.
        if self.dialect == "postgresql":
            g = GENERATIONS.c
            owner = select(a.generation_id).where(a.id == asset_id).scalar_subquery()
            await self.scalars(select(g.id).where(g.id == owner).with_for_update(key_share=True))
        values: dict[str, object] = {
            "thumbnail_state": state,
            "thumbnail_error": error,
            "thumbnail_claimed_until": None,
            "thumbnail_claim_token": None,
        }
        if content_type is not None:
            values["content_type"] = content_type
        if measured is not None:
            # Outputs stored before they were verified get what the thumbnail's probe found.
            values["width"] = func.coalesce(a.width, measured.width)
            values["height"] = func.coalesce(a.height, measured.height)
            if measured.duration_seconds is not None:
                values["duration_seconds"] = func.coalesce(a.duration_seconds, measured.duration_seconds)
        held = [] if token is None else [a.thumbnail_claim_token == token]
        stmt = (
            update(ASSETS).where(a.id == asset_id, a.thumbnail_state == PENDING, *held).values(**values).returning(a.id)
        )
        return await self.row(stmt) is not None

    async def thumbnail_settled(self, generation_id: uuid.UUID, at: datetime) -> Generation | None:
        g = GENERATIONS.c
        stmt = (
            update(GENERATIONS)
            .where(g.id == generation_id, g.thumbnails_pending > 0)
            .values(thumbnails_pending=g.thumbnails_pending - 1, updated_at=at)
            .returning(*GENERATIONS.c)
        )
        row = await self.row(stmt)
        return generation_of(row) if row else None

    async def pending_thumbnails(self, *, created_before: datetime, limit: int) -> list[uuid.UUID]:
        stmt = (
            select(a.generation_id)
            .where(a.thumbnail_state == PENDING, a.created_at < created_before, self._unclaimed())
            .group_by(a.generation_id)
            .order_by(func.min(a.created_at), a.generation_id)
            .limit(limit)
        )
        return list(await self.scalars(stmt))
