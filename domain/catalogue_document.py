"""The catalogue as a document: models and their presets, keyed by slug and preset name.

`read_catalogue` turns a decoded document (what `genhub catalogue apply` reads from a
YAML or JSON file) into entries, checking every model with `model_problems` and every
preset with `preset_problems`, the rules of upsertModel and upsertPreset. Every problem is
reported at once, named by its path in the document (`models[1].presets[0].params.steps`).
`catalogue_document` is the inverse: the stored catalogue as such a document.

Shape::

    version: 1
    models:
      - slug, name, provider, kind (image|video), costCredits    required
        capabilities (default {}), isActive (default true)
        presets: [{name, params (default {})}]                  default []
"""

from __future__ import annotations

import difflib
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.catalogue import AiModel, ModelKind, Preset, model_problems, preset_problems, preset_shape_problems
from domain.errors import Problems

CATALOGUE_VERSION = 1
MAX_MODELS = 500
MAX_PRESETS_PER_MODEL = 100

DOCUMENT_KEYS = ("version", "models")
MODEL_KEYS = ("slug", "name", "provider", "kind", "costCredits", "isActive", "capabilities", "presets")
REQUIRED_MODEL_KEYS = ("slug", "name", "provider", "kind", "costCredits")
PRESET_KEYS = ("name", "params")


@dataclass(frozen=True, slots=True)
class PresetEntry:
    name: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    slug: str
    name: str
    provider: str
    kind: ModelKind
    cost_credits: int
    capabilities: dict[str, Any]
    is_active: bool
    presets: tuple[PresetEntry, ...]


@dataclass(frozen=True, slots=True)
class CatalogueEntries:
    models: tuple[ModelEntry, ...]


def preset_key(name: str) -> str:
    """Two preset names of one model that a reader could take for the same name (case, Unicode forms)."""
    return unicodedata.normalize("NFKC", name.strip()).casefold()


def read_catalogue(document: Any, *, known_providers: frozenset[str]) -> CatalogueEntries:
    """The document's entries, or InvalidInput naming every problem by its path in the document."""
    problems = Problems()
    if not isinstance(document, dict):
        problems.add("(document)", "must be a mapping with 'version' and 'models'")
        problems.raise_if_any()
    _unknown_keys(document, DOCUMENT_KEYS, "", problems)
    version = document.get("version")
    if not _is_int(version) or version != CATALOGUE_VERSION:
        problems.add("version", f"must be {CATALOGUE_VERSION}")
    models = document.get("models")
    entries: list[ModelEntry] = []
    if not isinstance(models, list):
        problems.add("models", "must be a list of models")
    elif len(models) > MAX_MODELS:
        problems.add("models", f"must hold at most {MAX_MODELS} models")
    else:
        seen: dict[str, int] = {}
        for index, item in enumerate(models):
            where = f"models[{index}]"
            slug = item.get("slug") if isinstance(item, dict) else None
            if isinstance(slug, str) and slug in seen:
                problems.add(f"{where}.slug", f"repeats the slug of models[{seen[slug]}]")
            elif isinstance(slug, str):
                seen[slug] = index
            entry = _read_model(item, where, known_providers, problems)
            if entry is not None:
                entries.append(entry)
    problems.raise_if_any()
    return CatalogueEntries(tuple(entries))


def _read_model(item: Any, where: str, known_providers: frozenset[str], problems: Problems) -> ModelEntry | None:
    if not isinstance(item, dict):
        problems.add(where, "must be a mapping")
        return None
    before = len(problems.items)
    _unknown_keys(item, MODEL_KEYS, f"{where}.", problems)
    for key in REQUIRED_MODEL_KEYS:
        if key not in item:
            problems.add(f"{where}.{key}", "is required")
    slug, name, provider = (_text(item, key, where, problems) for key in ("slug", "name", "provider"))
    kind = item.get("kind")
    if "kind" in item and kind not in tuple(ModelKind):
        problems.add(f"{where}.kind", f"must be one of {', '.join(k.value for k in ModelKind)}")
    raw_cost = item.get("costCredits")
    cost: int | None = raw_cost if _is_int(raw_cost) else None
    if "costCredits" in item and cost is None:
        problems.add(f"{where}.costCredits", "must be an integer")
    is_active = item.get("isActive", True)
    if not isinstance(is_active, bool):
        problems.add(f"{where}.isActive", "must be true or false")
    capabilities = item.get("capabilities", {})
    presets = item.get("presets", [])
    if not isinstance(presets, list):
        problems.add(f"{where}.presets", "must be a list of presets")
        presets = []
    elif len(presets) > MAX_PRESETS_PER_MODEL:
        problems.add(f"{where}.presets", f"must hold at most {MAX_PRESETS_PER_MODEL} presets")
        presets = []
    # A field already reported above is checked with a stand-in, its stand-in's problems dropped,
    # so the others' problems are reported in the same run.
    unread = {
        k for k, v in (("slug", slug), ("name", name), ("provider", provider), ("costCredits", cost)) if v is None
    }
    fields = model_problems(
        slug=slug or "",
        name=name or "",
        provider=provider or "",
        cost_credits=cost or 0,
        capabilities=capabilities,
        known_providers=known_providers,
    )
    fields.items = [p for p in fields.items if p.field not in unread]
    _add_under(where, fields, problems)
    if slug is None or name is None or provider is None or cost is None or kind not in tuple(ModelKind) or fields.items:
        _check_preset_shapes(presets, where, problems)
        return None
    model = AiModel(
        id=uuid.UUID(int=0),
        slug=slug,
        name=name.strip(),
        provider=provider,
        kind=ModelKind(kind),
        cost_credits=cost,
        capabilities=capabilities,
        is_active=is_active is not False,
    )
    entries = _read_presets(model, presets, where, problems)
    if len(problems.items) > before:
        return None
    return ModelEntry(
        slug=slug,
        name=model.name,
        provider=provider,
        kind=model.kind,
        cost_credits=cost,
        capabilities=capabilities,
        is_active=model.is_active,
        presets=entries,
    )


def _read_presets(model: AiModel, presets: list[Any], where: str, problems: Problems) -> tuple[PresetEntry, ...]:
    entries: list[PresetEntry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(presets):
        at = f"{where}.presets[{index}]"
        name, params = _preset_fields(item, at, problems)
        if name is None or params is None:
            continue
        found = preset_problems(model, name=name, params=params)
        _add_under(at, found, problems)
        if found.items:
            continue
        key = preset_key(name)
        if key in seen:
            problems.add(f"{at}.name", f"names the same preset as {where}.presets[{seen[key]}]")
            continue
        seen[key] = index
        entries.append(PresetEntry(name=name.strip(), params=params))
    return tuple(entries)


def _check_preset_shapes(presets: list[Any], where: str, problems: Problems) -> None:
    """A model that cannot be read still has its presets' own mistakes reported."""
    for index, item in enumerate(presets):
        at = f"{where}.presets[{index}]"
        name, params = _preset_fields(item, at, problems)
        if name is not None and params is not None:
            _add_under(at, preset_shape_problems(name=name, params=params), problems)


def _preset_fields(item: Any, at: str, problems: Problems) -> tuple[str | None, Any]:
    if not isinstance(item, dict):
        problems.add(at, "must be a mapping with 'name' and 'params'")
        return None, None
    _unknown_keys(item, PRESET_KEYS, f"{at}.", problems)
    if "name" not in item:
        problems.add(f"{at}.name", "is required")
    return _text(item, "name", at, problems), item.get("params", {})


def _text(item: Mapping[str, Any], key: str, where: str, problems: Problems) -> str | None:
    if key not in item:
        return None  # reported as required where it is
    value = item[key]
    if not isinstance(value, str):
        problems.add(f"{where}.{key}", "must be a string")
        return None
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unknown_keys(item: Mapping[Any, Any], allowed: tuple[str, ...], prefix: str, problems: Problems) -> None:
    for key in item:
        if key in allowed:
            continue
        shown = key if isinstance(key, str) and key else repr(key)
        close = difflib.get_close_matches(shown, allowed, n=1) if isinstance(key, str) else []
        hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(allowed)})"
        problems.add(f"{prefix}{shown}", "is not a known key" + hint)


def _add_under(where: str, found: Problems, problems: Problems) -> None:
    for problem in found.items:
        problems.add(f"{where}.{problem.field}", problem.message)


def catalogue_document(models: Iterable[AiModel], presets: Iterable[Preset]) -> dict[str, Any]:
    """The stored catalogue as a document `read_catalogue` reads back (models by kind and slug, presets by name)."""
    by_model: dict[uuid.UUID, list[Preset]] = {}
    for preset in presets:
        by_model.setdefault(preset.model_id, []).append(preset)
    return {
        "version": CATALOGUE_VERSION,
        "models": [
            {
                "slug": m.slug,
                "name": m.name,
                "provider": m.provider,
                "kind": m.kind.value,
                "costCredits": m.cost_credits,
                "isActive": m.is_active,
                "capabilities": m.capabilities,
                "presets": [
                    {"name": p.name, "params": p.params}
                    for p in sorted(by_model.get(m.id, []), key=lambda p: (p.name, str(p.id)))
                ],
            }
            for m in sorted(models, key=lambda m: (m.kind.value, m.slug))
        ],
    }
