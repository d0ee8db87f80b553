"""GraphQL types of the catalogue area."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from domain import catalogue as dc
from domain.provider_routes import public_capabilities
from graph.admin.provider_types import ProviderRoute
from graph.common.node import Node
from graph.common.types import Forbidden, InvalidInput, NotFound
from graph.context import Info
from graph.permissions import IsAdmin
from graph.scalars import JSON

strawberry.enum(dc.ModelKind, name="ModelKind", description="What a model produces.")
ModelKind = dc.ModelKind


@strawberry.type(name="AiModel", description="A generation model offered by a provider.")
class AiModel(Node):
    slug: str
    name: str
    provider: str
    kind: ModelKind
    cost_credits: int = strawberry.field(description="Credits reserved when a generation starts.")
    capabilities: JSON = strawberry.field(
        description=(
            "Accepted params, limits and deadline (format: docs/catalogue.md); the provider routes are left "
            "out (admins read them in `routes`)."
        )
    )
    is_active: bool
    entity: strawberry.Private[dc.AiModel]

    @strawberry.field(
        description="The providers that can run it, in the order they are tried. Admins only.",
        permission_classes=[IsAdmin],
    )
    def routes(self) -> list[ProviderRoute]:
        return [ProviderRoute.from_domain(r) for r in self.entity.routes]

    @classmethod
    def from_domain(cls, model: dc.AiModel) -> AiModel:
        return cls(
            id=strawberry.ID(str(model.id)),
            slug=model.slug,
            name=model.name,
            provider=model.provider,
            kind=model.kind,
            cost_credits=model.cost_credits,
            capabilities=JSON(public_capabilities(model.capabilities)),
            is_active=model.is_active,
            entity=model,
        )


@strawberry.type(description="Named parameters for a model.")
class Preset(Node):
    name: str
    params: JSON
    model_id: strawberry.Private[str]

    @strawberry.field
    async def model(self, info: Info) -> AiModel:
        found = await info.context.loaders.model(uuid.UUID(self.model_id))
        assert found is not None, "a preset always has its model"
        return AiModel.from_domain(found)

    @classmethod
    def from_domain(cls, preset: dc.Preset) -> Preset:
        return cls(
            id=strawberry.ID(str(preset.id)),
            name=preset.name,
            params=JSON(preset.params),
            model_id=str(preset.model_id),
        )


@strawberry.type(description="One admin setting.")
class AdminSetting:
    key: str
    value: JSON


@strawberry.input(description="Create or update a model, identified by slug.")
class UpsertModelInput:
    slug: str = strawberry.field(
        description="The model's stable identifier: 2-63 lowercase letters, digits, '.', '_' or '-'; an existing slug updates that model."
    )
    name: str = strawberry.field(description="The display name.")
    provider: str = strawberry.field(description="The provider that runs it (`simulated`, `kie`...).")
    kind: ModelKind = strawberry.field(description="IMAGE or VIDEO.")
    cost_credits: int = strawberry.field(description="What one generation costs, in whole credits.")
    capabilities: JSON | None = strawberry.field(
        default=None,
        description="The parameters it takes and their limits (docs/catalogue.md); null keeps or leaves none.",
    )
    is_active: bool | None = strawberry.field(
        default=None, description="Whether users may start it; null keeps the current value (new models: active)."
    )


@strawberry.input(description="Create (no id) or update a preset.")
class UpsertPresetInput:
    model_id: strawberry.ID = strawberry.field(description="The model the preset is for.")
    name: str = strawberry.field(description="The preset's name, unique per model.")
    params: JSON = strawberry.field(
        description="The parameter values it fills in, checked against the model's capabilities."
    )
    id: strawberry.ID | None = strawberry.field(default=None, description="The preset to update; absent: create one.")


@strawberry.type
class ModelSuccess:
    model: AiModel


@strawberry.type
class PresetSuccess:
    preset: Preset


@strawberry.type
class AdminSettingSuccess:
    setting: AdminSetting


UpsertModelResult = Annotated[ModelSuccess | Forbidden | InvalidInput, strawberry.union("UpsertModelResult")]
UpsertPresetResult = Annotated[
    PresetSuccess | NotFound | Forbidden | InvalidInput, strawberry.union("UpsertPresetResult")
]
SetAdminSettingResult = Annotated[
    AdminSettingSuccess | Forbidden | InvalidInput, strawberry.union("SetAdminSettingResult")
]
