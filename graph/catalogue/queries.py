"""models, presets, adminSettings."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.catalogue_document import MAX_PRESETS_PER_MODEL
from domain.errors import NotFound
from graph.catalogue.types import AdminSetting, AiModel, ModelKind, Preset
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAdmin


@strawberry.type
class CatalogueQueries:
    @strawberry.field(
        description="Active models, optionally of one kind; `includeInactive` (admins only) adds deactivated ones."
    )
    async def models(
        self,
        info: Info,
        kind: Annotated[ModelKind | None, strawberry.argument(description="Only models of this kind.")] = None,
        include_inactive: Annotated[
            bool, strawberry.argument(description="Include inactive models too (admins only).")
        ] = False,
    ) -> list[AiModel]:
        found = await info.context.services.catalogue.models(
            kind,
            include_inactive=include_inactive,
            actor=info.context.require_viewer() if include_inactive else None,
        )
        return [AiModel.from_domain(m) for m in found]

    @strawberry.field(
        description=(
            f"Presets, optionally of one model: a plain list, as a model holds at most {MAX_PRESETS_PER_MODEL} "
            "presets (upsertPreset and catalogue files refuse more)."
        )
    )
    async def presets(
        self,
        info: Info,
        model_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only presets of this model.")
        ] = None,
    ) -> list[Preset]:
        try:
            wanted = lookup_id(model_id, "model") if model_id is not None else None
        except NotFound:
            return []  # a malformed id names no model, so it has no presets
        found = await info.context.services.catalogue.presets(wanted)
        return [Preset.from_domain(p) for p in found]

    @strawberry.field(description="Every admin setting (admin only).", permission_classes=[IsAdmin])
    async def admin_settings(self, info: Info) -> list[AdminSetting]:
        items = await info.context.services.catalogue.settings(info.context.require_viewer())
        return [AdminSetting(key=k, value=v) for k, v in items]
