"""The catalogue: models and presets (read by anyone, written by admins or the operator), admin settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from domain.audit import RequestOrigin
from domain.catalogue import AiModel, ModelKind, Preset
from domain.catalogue_plan import CataloguePlan
from domain.ports import CatalogueReader, Clock
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import catalogue, catalogue_files
from domain.users import Principal


@dataclass(frozen=True, slots=True)
class Catalogue:
    uow: UnitOfWorkFactory
    reads: UnitOfWorkFactory  # read-only units (a query's scope), never a write's connection
    cache: CatalogueReader
    known_providers: frozenset[str]
    clock: Clock

    async def models(
        self, kind: ModelKind | None, *, include_inactive: bool = False, actor: Principal | None = None
    ) -> list[AiModel]:
        return await catalogue.list_models(
            kind=kind, catalogue=self.cache, include_inactive=include_inactive, actor=actor
        )

    async def presets(self, model_id: uuid.UUID | None) -> list[Preset]:
        return await catalogue.list_presets(model_id=model_id, catalogue=self.cache)

    async def upsert_model(
        self,
        actor: Principal | None,
        *,
        slug: str,
        name: str,
        provider: str,
        kind: ModelKind,
        cost_credits: int,
        capabilities: Any,
        is_active: bool | None,
        origin: RequestOrigin = RequestOrigin(),
    ) -> AiModel:
        """`actor` None: the operator (CLI, seeding)."""
        return await catalogue.upsert_model(
            actor=actor,
            slug=slug,
            name=name,
            provider=provider,
            kind=kind,
            cost_credits=cost_credits,
            capabilities=capabilities,
            is_active=is_active,
            known_providers=self.known_providers,
            uow=self.uow(),
            catalogue=self.cache,
            clock=self.clock,
            origin=origin,
        )

    async def upsert_preset(
        self,
        actor: Principal | None,
        *,
        preset_id: uuid.UUID | None,
        model_id: uuid.UUID,
        name: str,
        params: Any,
        origin: RequestOrigin = RequestOrigin(),
    ) -> Preset:
        return await catalogue.upsert_preset(
            actor=actor,
            preset_id=preset_id,
            model_id=model_id,
            name=name,
            params=params,
            uow=self.uow(),
            catalogue=self.cache,
            clock=self.clock,
            origin=origin,
        )

    async def apply_document(self, document: Any, *, dry_run: bool, prune: bool) -> CataloguePlan:
        """The operator's catalogue file (`genhub catalogue apply`); there is no API caller for it."""
        return await catalogue_files.apply_catalogue(
            document=document,
            dry_run=dry_run,
            prune=prune,
            known_providers=self.known_providers,
            uow=self.uow(),
            catalogue=self.cache,
            clock=self.clock,
        )

    async def export_document(self) -> dict[str, Any]:
        return await catalogue_files.export_catalogue(uow=self.uow())

    async def settings(self, actor: Principal) -> list[tuple[str, Any]]:
        return await catalogue.list_settings(actor=actor, uow=self.reads())

    async def set_setting(
        self, actor: Principal, key: str, value: Any, origin: RequestOrigin = RequestOrigin()
    ) -> tuple[str, Any]:
        return await catalogue.set_setting(
            actor=actor, key=key, value=value, uow=self.uow(), clock=self.clock, origin=origin
        )
