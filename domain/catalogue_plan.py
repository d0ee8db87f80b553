"""What applying a catalogue document changes: per model and preset, created / changed (which fields) / unchanged.

Models are matched by slug, presets by their model and name (`preset_key`: a name that
differs only in case or Unicode form is the same preset, renamed). What the database holds and
the document does not name is reported and left alone; with `prune`, such a model is
deactivated (never deleted: generations reference it). Presets are never deleted.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from domain.catalogue import AiModel, Preset
from domain.catalogue_document import CatalogueEntries, ModelEntry, preset_key
from domain.errors import Problems

MAX_LISTED_CHANGES = 20


class _NotSet(enum.Enum):
    NOT_SET = "not set"


#: A FieldChange's `before` or `after` when the key is absent on that side.
NOT_SET = _NotSet.NOT_SET


class Action(enum.StrEnum):
    CREATE = "created"
    UPDATE = "changed"
    UNCHANGED = "unchanged"
    ABSENT = "not in the file"
    DEACTIVATE = "deactivated"


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class PresetPlan:
    name: str
    action: Action
    changes: tuple[FieldChange, ...] = ()
    target: Preset | None = None  # what to save; None: nothing to write


@dataclass(frozen=True, slots=True)
class ModelPlan:
    slug: str
    action: Action
    changes: tuple[FieldChange, ...] = ()
    target: AiModel | None = None
    presets: tuple[PresetPlan, ...] = ()


@dataclass(frozen=True, slots=True)
class CataloguePlan:
    models: tuple[ModelPlan, ...]

    @property
    def writes(self) -> bool:
        return any(m.target is not None or any(p.target is not None for p in m.presets) for m in self.models)

    def count(self, action: Action) -> tuple[int, int]:
        """(models, presets) with this action."""
        return (
            sum(m.action is action for m in self.models),
            sum(p.action is action for m in self.models for p in m.presets),
        )


def plan_catalogue(
    entries: CatalogueEntries,
    *,
    models: Iterable[AiModel],
    presets: Iterable[Preset],
    prune: bool,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> CataloguePlan:
    """The plan; InvalidInput when a preset of the document matches more than one stored preset."""
    stored = {m.slug: m for m in models}
    presets_of: dict[uuid.UUID, list[Preset]] = {}
    for preset in presets:
        presets_of.setdefault(preset.model_id, []).append(preset)
    problems = Problems()
    plans = [
        _plan_model(index, entry, stored.get(entry.slug), presets_of, problems, new_id)
        for index, entry in enumerate(entries.models)
    ]
    problems.raise_if_any()
    named = {e.slug for e in entries.models}
    for model in sorted(stored.values(), key=lambda m: (m.kind.value, m.slug)):
        if model.slug in named:
            continue
        if prune and model.is_active:
            change = FieldChange("isActive", True, False)
            plans.append(ModelPlan(model.slug, Action.DEACTIVATE, (change,), replace(model, is_active=False)))
        else:
            plans.append(ModelPlan(model.slug, Action.ABSENT))
    return CataloguePlan(tuple(plans))


def _plan_model(
    index: int,
    entry: ModelEntry,
    existing: AiModel | None,
    presets_of: dict[uuid.UUID, list[Preset]],
    problems: Problems,
    new_id: Callable[[], uuid.UUID],
) -> ModelPlan:
    wanted = AiModel(
        id=existing.id if existing else new_id(),
        slug=entry.slug,
        name=entry.name,
        provider=entry.provider,
        kind=entry.kind,
        cost_credits=entry.cost_credits,
        capabilities=entry.capabilities,
        is_active=entry.is_active,
    )
    stored = presets_of.get(existing.id, []) if existing else []
    preset_plans: list[PresetPlan] = []
    for preset_index, preset in enumerate(entry.presets):
        same = [p for p in stored if preset_key(p.name) == preset_key(preset.name)]
        if len(same) > 1:
            problems.add(
                f"models[{index}].presets[{preset_index}].name",
                f"{len(same)} stored presets of this model have this name; rename all but one (upsertPreset)",
            )
            continue
        if not same:
            target = Preset(id=new_id(), model_id=wanted.id, name=preset.name, params=preset.params)
            preset_plans.append(PresetPlan(preset.name, Action.CREATE, target=target))
            continue
        renamed = [FieldChange("name", same[0].name, preset.name)] if same[0].name != preset.name else []
        changes = tuple(renamed + json_changes("params", same[0].params, preset.params))
        if changes:
            target = replace(same[0], name=preset.name, params=preset.params)
            preset_plans.append(PresetPlan(preset.name, Action.UPDATE, changes, target))
        else:
            preset_plans.append(PresetPlan(preset.name, Action.UNCHANGED))
    named = {preset_key(p.name) for p in entry.presets}
    preset_plans.extend(
        PresetPlan(p.name, Action.ABSENT)
        for p in sorted(stored, key=lambda p: p.name)
        if preset_key(p.name) not in named
    )
    if existing is None:
        return ModelPlan(entry.slug, Action.CREATE, target=wanted, presets=tuple(preset_plans))
    changes = tuple(_model_changes(existing, wanted))
    if changes:
        return ModelPlan(entry.slug, Action.UPDATE, changes, wanted, tuple(preset_plans))
    return ModelPlan(entry.slug, Action.UNCHANGED, presets=tuple(preset_plans))


def _model_changes(before: AiModel, after: AiModel) -> Iterable[FieldChange]:
    for field, old, new in (
        ("name", before.name, after.name),
        ("provider", before.provider, after.provider),
        ("kind", before.kind.value, after.kind.value),
        ("costCredits", before.cost_credits, after.cost_credits),
        ("isActive", before.is_active, after.is_active),
    ):
        if _canonical(old) != _canonical(new):
            yield FieldChange(field, old, new)
    yield from json_changes("capabilities", before.capabilities, after.capabilities)


def json_changes(path: str, before: Any, after: Any) -> list[FieldChange]:
    """Where two JSON values differ, down to the keys of objects; `1` and `true` differ, key order does not."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[FieldChange] = []
        for key in sorted({*before, *after}, key=str):
            old, new = before.get(key, NOT_SET), after.get(key, NOT_SET)
            if old is NOT_SET or new is NOT_SET:
                found.append(FieldChange(f"{path}.{key}", old, new))
            else:
                found.extend(json_changes(f"{path}.{key}", old, new))
        return found
    if _canonical(before) != _canonical(after):
        return [FieldChange(path, before, after)]
    return []


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True, default=repr)
