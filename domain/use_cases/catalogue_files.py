"""Applying a catalogue document (all or nothing, idempotent) and exporting the stored catalogue as one."""

from __future__ import annotations

import dataclasses
from typing import Any

from domain.audit import Attempt, AuditAction, AuditOutcome, RequestOrigin
from domain.catalogue_document import catalogue_document, read_catalogue
from domain.catalogue_plan import Action, CataloguePlan, plan_catalogue
from domain.errors import DomainError
from domain.ports import CatalogueReader, Clock
from domain.repositories import UnitOfWork
from domain.use_cases.audit import moment, record_refusal

_KINDS = ("models", "presets")


async def apply_catalogue(
    *,
    document: Any,
    dry_run: bool,
    prune: bool,
    known_providers: frozenset[str],
    uow: UnitOfWork,
    catalogue: CatalogueReader,
    clock: Clock | None = None,
) -> CataloguePlan:
    """The operator's catalogue: InvalidInput (every problem, nothing written) or the plan, applied unless `dry_run`.

    An apply that writes is audited as the operator's (in its transaction); so is a refused one
    (not a dry run's refusal, nor an apply that had nothing to change: neither writes anything).
    """
    attempt = Attempt(AuditAction.APPLY_CATALOGUE, None, moment(clock), None, None, RequestOrigin(), {"prune": prune})
    try:
        plan = await _apply(attempt, document, dry_run=dry_run, prune=prune, known_providers=known_providers, uow=uow)
    except DomainError as exc:
        if not dry_run:
            await record_refusal(uow, attempt, exc)
        raise
    if plan.writes and not dry_run:
        await catalogue.invalidate()
    return plan


async def _apply(
    attempt: Attempt,
    document: Any,
    *,
    dry_run: bool,
    prune: bool,
    known_providers: frozenset[str],
    uow: UnitOfWork,
) -> CataloguePlan:
    entries = read_catalogue(document, known_providers=known_providers)
    async with uow:
        if not dry_run:
            # Taken before reading, so a concurrent apply's rows are seen (and not created twice).
            await uow.catalogue.lock_catalogue()
        models = await uow.catalogue.list_models(include_inactive=True)
        presets = await uow.catalogue.list_presets()
        plan = plan_catalogue(entries, models=models, presets=presets, prune=prune)
        if dry_run or not plan.writes:  # idempotent: an apply that changes nothing writes nothing, not even an entry
            return plan
        counts = {
            f"{kind}_{action.name.lower()}": n
            for action in Action
            for kind, n in zip(_KINDS, plan.count(action), strict=True)
        }
        await uow.audit.add(attempt.entry(AuditOutcome.APPLIED, {k: n for k, n in counts.items() if n}))
        for model_plan in plan.models:
            model_id = None
            if model_plan.target is not None:
                model_id = (await uow.catalogue.save_model(model_plan.target)).id
            for preset_plan in model_plan.presets:
                if preset_plan.target is None:
                    continue
                preset = preset_plan.target
                if model_id is not None:  # the stored id wins over the planned one (an upsert on the slug)
                    preset = dataclasses.replace(preset, model_id=model_id)
                await uow.catalogue.save_preset(preset)
        await uow.commit()
    return plan


async def export_catalogue(*, uow: UnitOfWork) -> dict[str, Any]:
    """Every model (inactive ones too) and preset, as a document `apply_catalogue` takes back unchanged."""
    async with uow:
        models = await uow.catalogue.list_models(include_inactive=True)
        presets = await uow.catalogue.list_presets()
    return catalogue_document(models, presets)
