"""Catalogue administration and reads: models, presets, admin settings."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from typing import Any

from domain.audit import Attempt, AuditAction, AuditOutcome, RequestOrigin
from domain.catalogue import AiModel, ModelKind, Preset, model_problems, preset_problems, preset_shape_problems
from domain.catalogue_document import MAX_PRESETS_PER_MODEL, preset_key
from domain.errors import DomainError, Forbidden, InvalidInput, NameTaken, NotFound
from domain.ports import CatalogueReader, Clock
from domain.repositories import UnitOfWork
from domain.text import json_problem
from domain.use_cases.audit import moment, record_refusal
from domain.users import Principal

SETTING_KEY_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,127}$")


def _require_admin(actor: Principal | None) -> None:
    """`None` is the trusted operator (CLI, seeding); API callers must be admins."""
    if actor is not None and not actor.is_admin:
        raise Forbidden("Only administrators can do this.")


async def list_models(
    *,
    kind: ModelKind | None,
    catalogue: CatalogueReader,
    include_inactive: bool = False,
    actor: Principal | None = None,
) -> list[AiModel]:
    """Active models; with `include_inactive`, an admin also sees the deactivated ones (to bring them back)."""
    if include_inactive and (actor is None or not actor.is_admin):
        raise Forbidden("Only administrators can list inactive models.")
    models: list[AiModel] = await catalogue.models()
    return [m for m in models if (m.is_active or include_inactive) and (kind is None or m.kind is kind)]


async def list_presets(*, model_id: uuid.UUID | None, catalogue: CatalogueReader) -> list[Preset]:
    presets: list[Preset] = await catalogue.presets()
    return [p for p in presets if model_id is None or p.model_id == model_id]


async def upsert_model(
    *,
    actor: Principal | None,
    slug: str,
    name: str,
    provider: str,
    kind: ModelKind,
    cost_credits: int,
    capabilities: Any,
    is_active: bool | None,
    known_providers: frozenset[str],
    uow: UnitOfWork,
    catalogue: CatalogueReader,
    clock: Clock | None = None,
    origin: RequestOrigin = RequestOrigin(),
) -> AiModel:
    """Create or update the model `slug` names; audited (a refusal too, on its own)."""
    _require_admin(actor)
    asked = {"slug": slug, "provider": provider, "kind": kind.value, "costCredits": cost_credits, "isActive": is_active}
    attempt = Attempt(AuditAction.UPSERT_MODEL, actor, moment(clock), None, None, origin, asked)
    try:
        saved = await _upsert_model(
            attempt,
            slug=slug,
            name=name,
            provider=provider,
            kind=kind,
            cost_credits=cost_credits,
            capabilities=capabilities,
            is_active=is_active,
            known_providers=known_providers,
            uow=uow,
        )
    except DomainError as exc:
        await record_refusal(uow, attempt, exc)
        raise
    await catalogue.invalidate()
    return saved


async def _upsert_model(
    attempt: Attempt,
    *,
    slug: str,
    name: str,
    provider: str,
    kind: ModelKind,
    cost_credits: int,
    capabilities: Any,
    is_active: bool | None,
    known_providers: frozenset[str],
    uow: UnitOfWork,
) -> AiModel:
    given = {} if capabilities is None else capabilities
    model_problems(
        slug=slug,
        name=name,
        provider=provider,
        cost_credits=cost_credits,
        capabilities=given,
        known_providers=known_providers,
    ).raise_if_any()
    async with uow:
        existing = await uow.catalogue.get_model_by_slug(slug)
        if capabilities is None:  # left out: an update keeps the model's (as with isActive)
            given = dict(existing.capabilities) if existing else {}
        model = AiModel(
            id=existing.id if existing else uuid.uuid4(),
            slug=slug,
            name=name.strip(),
            provider=provider,
            kind=kind,
            cost_credits=cost_credits,
            capabilities=given,
            is_active=is_active if is_active is not None else (existing.is_active if existing else True),
        )
        saved = await uow.catalogue.save_model(model)
        outcome = AuditOutcome.UNCHANGED if existing == saved else AuditOutcome.APPLIED
        entry = replace(attempt, target_id=str(saved.id)).entry(
            outcome, {"created": existing is None, "isActive": saved.is_active}
        )
        await uow.audit.add(entry)
        await uow.commit()
    return saved


async def upsert_preset(
    *,
    actor: Principal | None,
    preset_id: uuid.UUID | None,
    model_id: uuid.UUID,
    name: str,
    params: Any,
    uow: UnitOfWork,
    catalogue: CatalogueReader,
    clock: Clock | None = None,
    origin: RequestOrigin = RequestOrigin(),
) -> Preset:
    """Create or update a preset; NameTaken when another preset of the model has the same `preset_key`.

    The catalogue file matches presets by that key, so two presets it cannot tell apart are
    refused here too, under the lock `apply_catalogue` takes, so that an apply and an upsert
    (or two upserts) never add look-alikes side by side.
    """
    _require_admin(actor)
    asked = {"modelId": str(model_id), "name": name}
    target = str(preset_id) if preset_id is not None else None
    attempt = Attempt(AuditAction.UPSERT_PRESET, actor, moment(clock), target, None, origin, asked)
    try:
        preset = await _upsert_preset(
            attempt, preset_id=preset_id, model_id=model_id, name=name, params=params, uow=uow
        )
    except DomainError as exc:
        await record_refusal(uow, attempt, exc)
        raise
    await catalogue.invalidate()
    return preset


async def _upsert_preset(
    attempt: Attempt, *, preset_id: uuid.UUID | None, model_id: uuid.UUID, name: str, params: Any, uow: UnitOfWork
) -> Preset:
    preset_shape_problems(name=name, params=params).raise_if_any()
    async with uow:
        await uow.catalogue.lock_catalogue()
        model = await uow.catalogue.get_model(model_id)
        if model is None:
            raise NotFound("model")
        existing = None
        if preset_id is not None:
            existing = await uow.catalogue.get_preset(preset_id)
            if existing is None:
                raise NotFound("preset")
            if existing.model_id != model_id:
                raise InvalidInput.single("modelId", "a preset cannot move to another model")
        preset_problems(model, name=name, params=params).raise_if_any()
        key = preset_key(name)
        others = await uow.catalogue.list_presets(model_id)
        taken = [p.name for p in others if p.id != preset_id and preset_key(p.name) == key]
        if taken:
            raise NameTaken(
                "name",
                f"another preset of this model is named {taken[0]!r} (names are compared without case or Unicode form)",
            )
        if existing is None and len(others) >= MAX_PRESETS_PER_MODEL:
            # `presets` is a plain list: this bound (a catalogue file's too) keeps it small
            raise InvalidInput.single(
                "modelId", f"this model has {MAX_PRESETS_PER_MODEL} presets, the most it may: change one instead"
            )
        preset = await uow.catalogue.save_preset(
            Preset(id=preset_id or uuid.uuid4(), model_id=model_id, name=name.strip(), params=dict(params))
        )
        outcome = AuditOutcome.UNCHANGED if existing == preset else AuditOutcome.APPLIED
        await uow.audit.add(replace(attempt, target_id=str(preset.id)).entry(outcome, {"created": existing is None}))
        await uow.commit()
    return preset


async def list_settings(*, actor: Principal, uow: UnitOfWork) -> list[tuple[str, Any]]:
    _require_admin(actor)
    async with uow:
        return await uow.admin_settings.list()


async def set_setting(
    *,
    actor: Principal,
    key: str,
    value: Any,
    uow: UnitOfWork,
    clock: Clock | None = None,
    origin: RequestOrigin = RequestOrigin(),
) -> tuple[str, Any]:
    """Audited with the key and the value's size only: a setting's value may be a secret."""
    _require_admin(actor)
    attempt = Attempt(AuditAction.SET_ADMIN_SETTING, actor, moment(clock), key, None, origin, {"key": key})
    try:
        if not SETTING_KEY_RE.match(key):
            raise InvalidInput.single("key", "must be 1-128 characters: lowercase letters, digits, '_', '.', '-'")
        if value is None:
            raise InvalidInput.single("value", "must not be null")
        if (why := json_problem(value)) is not None:
            raise InvalidInput.single("value", why)
        async with uow:
            before = await uow.admin_settings.get(key)
            await uow.admin_settings.set(key, value, actor_id=actor.user_id)
            outcome = AuditOutcome.UNCHANGED if before == value else AuditOutcome.APPLIED
            size = len(json.dumps(value, separators=(",", ":"), default=str))
            await uow.audit.add(attempt.entry(outcome, {"created": before is None, "valueBytes": size}))
            await uow.commit()
    except DomainError as exc:
        await record_refusal(uow, attempt, exc)
        raise
    return key, value
