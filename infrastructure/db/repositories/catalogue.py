"""Models, presets and admin settings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from domain.catalogue import AiModel, ModelKind, Preset
from infrastructure.db.models import AdminSettingRow, ModelRow, PresetRow
from infrastructure.db.repositories.base import AnyRow, SqlRepository
from infrastructure.db.tables import ADMIN_SETTINGS, MODELS, PRESETS

#: The transaction-scoped advisory lock of catalogue applies (the migrations use another).
CATALOGUE_LOCK_ID = 0x67656E687563


def _model(row: AnyRow) -> AiModel:
    return AiModel(
        id=row.id,
        slug=row.slug,
        name=row.name,
        provider=row.provider,
        kind=ModelKind(row.kind),
        cost_credits=row.cost_credits,
        capabilities=dict(row.capabilities or {}),
        is_active=row.is_active,
    )


def _preset(row: AnyRow) -> Preset:
    return Preset(id=row.id, model_id=row.model_id, name=row.name, params=dict(row.params or {}))


class SqlCatalogueRepository(SqlRepository):
    async def list_models(self, kind: ModelKind | None = None, *, include_inactive: bool = False) -> list[AiModel]:
        m = MODELS.c
        stmt = select(MODELS).order_by(m.kind, m.slug)
        if kind is not None:
            stmt = stmt.where(m.kind == kind.value)
        if not include_inactive:
            stmt = stmt.where(m.is_active.is_(True))
        return [_model(r) for r in await self.rows(stmt)]

    async def get_model(self, model_id: uuid.UUID) -> AiModel | None:
        row = await self.row(select(MODELS).where(MODELS.c.id == model_id))
        return _model(row) if row else None

    async def get_models(self, ids: Sequence[uuid.UUID]) -> list[AiModel]:
        if not ids:
            return []
        return [_model(r) for r in await self.rows(select(MODELS).where(MODELS.c.id.in_(set(ids))))]

    async def get_model_by_slug(self, slug: str) -> AiModel | None:
        row = await self.row(select(MODELS).where(MODELS.c.slug == slug))
        return _model(row) if row else None

    async def save_model(self, model: AiModel) -> AiModel:
        now = datetime.now(UTC)
        values = {
            "slug": model.slug,
            "name": model.name,
            "provider": model.provider,
            "kind": model.kind.value,
            "cost_credits": model.cost_credits,
            "capabilities": model.capabilities,
            "is_active": model.is_active,
            "updated_at": now,
        }
        stmt = (
            self.insert(ModelRow)
            .values(id=model.id, created_at=now, **values)
            .on_conflict_do_update(index_elements=["slug"], set_=values)
            .returning(ModelRow.id)
        )
        model_id = (await self.session.execute(stmt)).scalar_one()
        row = await self.row(select(MODELS).where(MODELS.c.id == model_id))
        assert row is not None
        return _model(row)

    async def list_presets(self, model_id: uuid.UUID | None = None) -> list[Preset]:
        stmt = select(PRESETS).order_by(PRESETS.c.name, PRESETS.c.id)
        if model_id is not None:
            stmt = stmt.where(PRESETS.c.model_id == model_id)
        return [_preset(r) for r in await self.rows(stmt)]

    async def get_preset(self, preset_id: uuid.UUID) -> Preset | None:
        row = await self.row(select(PRESETS).where(PRESETS.c.id == preset_id))
        return _preset(row) if row else None

    async def get_presets(self, ids: Sequence[uuid.UUID]) -> list[Preset]:
        if not ids:
            return []
        return [_preset(r) for r in await self.rows(select(PRESETS).where(PRESETS.c.id.in_(set(ids))))]

    async def save_preset(self, preset: Preset) -> Preset:
        now = datetime.now(UTC)
        values = {"model_id": preset.model_id, "name": preset.name, "params": preset.params, "updated_at": now}
        stmt = (
            self.insert(PresetRow)
            .values(id=preset.id, created_at=now, **values)
            .on_conflict_do_update(index_elements=["id"], set_=values)
        )
        await self.session.execute(stmt)
        return preset

    async def lock_catalogue(self) -> None:
        # Presets have no unique name, so two catalogue applies must not interleave their
        # read-then-insert. SQLite serialises writers itself: a second one fails, never duplicates.
        if self.dialect == "postgresql":
            await self.session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": CATALOGUE_LOCK_ID})


class SqlAdminSettingsRepository(SqlRepository):
    async def list(self) -> list[tuple[str, Any]]:
        rows = await self.rows(select(ADMIN_SETTINGS.c.key, ADMIN_SETTINGS.c.value).order_by(ADMIN_SETTINGS.c.key))
        return [(r.key, r.value) for r in rows]

    async def get(self, key: str) -> Any | None:
        row = await self.row(select(ADMIN_SETTINGS.c.value).where(ADMIN_SETTINGS.c.key == key))
        return row.value if row else None

    async def set(self, key: str, value: Any, *, actor_id: uuid.UUID | None) -> None:
        now = datetime.now(UTC)
        values = {"value": value, "updated_at": now, "updated_by": actor_id}
        stmt = (
            self.insert(AdminSettingRow)
            .values(key=key, **values)
            .on_conflict_do_update(index_elements=["key"], set_=values)
        )
        await self.session.execute(stmt)
