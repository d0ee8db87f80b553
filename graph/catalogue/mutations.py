"""upsertModel, upsertPreset, setAdminSetting (admin only)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.audit import AuditAction
from graph.admin.audited_ids import audited_id
from graph.catalogue.types import (
    AdminSetting,
    AdminSettingSuccess,
    AiModel,
    ModelSuccess,
    Preset,
    PresetSuccess,
    SetAdminSettingResult,
    UpsertModelInput,
    UpsertModelResult,
    UpsertPresetInput,
    UpsertPresetResult,
)
from graph.common.ids import parse_id
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.request_origin import origin_of
from graph.scalars import JSON


@strawberry.type
class CatalogueMutations:
    @strawberry.mutation(
        description="Create or update a model by slug (admin only).", permission_classes=[IsAuthenticated]
    )
    async def upsert_model(
        self,
        info: Info,
        input: Annotated[UpsertModelInput, strawberry.argument(description="The model, identified by its slug.")],
    ) -> UpsertModelResult:
        model = await info.context.services.catalogue.upsert_model(
            info.context.require_viewer(),
            slug=input.slug,
            name=input.name,
            provider=input.provider,
            kind=input.kind,
            cost_credits=input.cost_credits,
            capabilities=input.capabilities,
            is_active=input.is_active,
            origin=origin_of(info),
        )
        return ModelSuccess(model=AiModel.from_domain(model))

    @strawberry.mutation(description="Create or update a preset (admin only).", permission_classes=[IsAuthenticated])
    async def upsert_preset(
        self,
        info: Info,
        input: Annotated[UpsertPresetInput, strawberry.argument(description="The preset (with an id: an update).")],
    ) -> UpsertPresetResult:
        action = AuditAction.UPSERT_PRESET
        preset_id = (
            await audited_id(info, action, input.id, lambda v: parse_id(v, "id")) if input.id is not None else None
        )
        model_id = await audited_id(info, action, input.model_id, lambda v: parse_id(v, "modelId"))
        preset = await info.context.services.catalogue.upsert_preset(
            info.context.require_viewer(),
            preset_id=preset_id,
            model_id=model_id,
            name=input.name,
            params=input.params,
            origin=origin_of(info),
        )
        return PresetSuccess(preset=Preset.from_domain(preset))

    @strawberry.mutation(description="Set one admin setting (admin only).", permission_classes=[IsAuthenticated])
    async def set_admin_setting(
        self,
        info: Info,
        key: Annotated[str, strawberry.argument(description="The setting's name.")],
        value: Annotated[JSON, strawberry.argument(description="Its new value (JSON).")],
    ) -> SetAdminSettingResult:
        k, v = await info.context.services.catalogue.set_setting(
            info.context.require_viewer(), key, value, origin_of(info)
        )
        return AdminSettingSuccess(setting=AdminSetting(key=k, value=v))
