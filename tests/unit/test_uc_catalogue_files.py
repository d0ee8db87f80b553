"""Applying a catalogue document (domain/use_cases/catalogue_files.py, domain/catalogue_plan.py) with in-memory fakes."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from domain.audit import OPERATOR, AuditAction, AuditOutcome
from domain.catalogue import AiModel, ModelKind, Preset
from domain.catalogue_plan import NOT_SET, Action, FieldChange, json_changes
from domain.errors import InvalidInput
from domain.use_cases import catalogue_files
from tests.unit.fakes import Fakes

PROVIDERS = frozenset({"simulated", "kie"})
STEPS = {"params": {"steps": {"type": "int", "min": 1, "max": 50, "default": 20}}}


def model(slug: str = "sim-image", **fields: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": "Simulated image",
        "provider": "simulated",
        "kind": "image",
        "costCredits": 10,
        "capabilities": STEPS,
        "presets": [{"name": "Fast", "params": {"steps": 4}}, {"name": "Slow", "params": {"steps": 40}}],
        **fields,
    }


def document(*models: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "models": list(models)}


async def apply(fakes: Fakes, doc: Any, *, dry_run: bool = False, prune: bool = False) -> Any:
    return await catalogue_files.apply_catalogue(
        document=doc,
        dry_run=dry_run,
        prune=prune,
        known_providers=PROVIDERS,
        uow=fakes.uow,
        catalogue=fakes.catalogue,
        clock=fakes.clock,
    )


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


async def test_a_first_apply_creates_every_model_and_preset(fakes: Fakes) -> None:
    # when a document of two models is applied to an empty catalogue
    plan = await apply(fakes, document(model(), model("sim-video", kind="video", presets=[])))
    # then both models and their presets exist, written in one commit under the catalogue lock
    assert [(m.slug, m.action) for m in plan.models] == [("sim-image", Action.CREATE), ("sim-video", Action.CREATE)]
    assert plan.count(Action.CREATE) == (2, 2)
    assert sorted(m.slug for m in fakes.db.models.values()) == ["sim-image", "sim-video"]
    image = next(m for m in fakes.db.models.values() if m.slug == "sim-image")
    assert sorted((p.name, p.params, p.model_id) for p in fakes.db.presets.values()) == [
        ("Fast", {"steps": 4}, image.id),
        ("Slow", {"steps": 40}, image.id),
    ]
    assert (fakes.db.commits, fakes.db.catalogue_locks, fakes.catalogue.invalidations) == (1, 1, 1)


async def test_applying_the_same_document_again_writes_nothing(fakes: Fakes) -> None:
    # given an applied document
    doc = document(model())
    await apply(fakes, doc)
    rows = (dict(fakes.db.models), dict(fakes.db.presets))
    # when it is applied again
    plan = await apply(fakes, doc)
    # then everything is unchanged: no commit, no invalidation, the same rows
    assert not plan.writes
    assert [(m.action, [p.action for p in m.presets]) for m in plan.models] == [
        (Action.UNCHANGED, [Action.UNCHANGED, Action.UNCHANGED])
    ]
    assert (fakes.db.commits, fakes.catalogue.invalidations) == (1, 1)
    assert (fakes.db.models, fakes.db.presets) == rows


async def test_a_dry_run_plans_without_writing(fakes: Fakes) -> None:
    plan = await apply(fakes, document(model()), dry_run=True)
    assert plan.writes and plan.count(Action.CREATE) == (1, 2)
    assert (fakes.db.models, fakes.db.presets, fakes.db.commits) == ({}, {}, 0)
    assert (fakes.db.catalogue_locks, fakes.catalogue.invalidations) == (0, 0)


async def test_a_changed_field_is_reported_and_only_it_is_written(fakes: Fakes) -> None:
    # given an applied document
    await apply(fakes, document(model()))
    before = next(iter(fakes.db.models.values()))
    fast = next(p for p in fakes.db.presets.values() if p.name == "Fast")
    # when the price, one capability bound and one preset's params change
    capabilities = {"params": {"steps": {"type": "int", "min": 1, "max": 60, "default": 20}}}
    presets = [{"name": "Fast", "params": {"steps": 6}}, {"name": "Slow", "params": {"steps": 40}}]
    plan = await apply(fakes, document(model(costCredits=12, capabilities=capabilities, presets=presets)))
    # then the plan names exactly those, and the rows keep their ids
    (image,) = plan.models
    assert image.action is Action.UPDATE
    assert image.changes == (
        FieldChange("costCredits", 10, 12),
        FieldChange("capabilities.params.steps.max", 50, 60),
    )
    assert [(p.name, p.action, p.changes) for p in image.presets] == [
        ("Fast", Action.UPDATE, (FieldChange("params.steps", 4, 6),)),
        ("Slow", Action.UNCHANGED, ()),
    ]
    after = fakes.db.models[before.id]
    assert (after.cost_credits, after.capabilities) == (12, capabilities)
    assert fakes.db.presets[fast.id].params == {"steps": 6}


async def test_what_the_document_does_not_name_is_left_alone_unless_pruned(fakes: Fakes) -> None:
    # given a stored model the document does not name, and a stored preset it does not name
    other = fakes.model(slug="legacy", provider="simulated")
    await apply(fakes, document(model()))
    image = next(m for m in fakes.db.models.values() if m.slug == "sim-image")
    extra = Preset(uuid.uuid4(), image.id, "Hand made", {})
    fakes.db.presets[extra.id] = extra
    # when it is applied without and then with prune
    kept = await apply(fakes, document(model()))
    pruned = await apply(fakes, document(model()), prune=True)
    # then without prune both are reported and untouched
    assert [(m.slug, m.action) for m in kept.models] == [("sim-image", Action.UNCHANGED), ("legacy", Action.ABSENT)]
    assert ("Hand made", Action.ABSENT) in [(p.name, p.action) for p in kept.models[0].presets]
    # and with prune the model is deactivated (never deleted), the preset still kept
    assert [(m.slug, m.action) for m in pruned.models] == [
        ("sim-image", Action.UNCHANGED),
        ("legacy", Action.DEACTIVATE),
    ]
    assert fakes.db.models[other.id] == dataclasses.replace(other, is_active=False)
    assert extra.id in fakes.db.presets
    # and pruning again finds nothing more to do
    assert not (await apply(fakes, document(model()), prune=True)).writes


async def test_an_invalid_document_writes_nothing(fakes: Fakes) -> None:
    # given a document whose second model is invalid
    doc = document(model(), model("sim-video", kind="video", costCredits=-5))
    # when it is applied, then it is refused whole before anything is read or written
    with pytest.raises(InvalidInput) as caught:
        await apply(fakes, doc)
    assert [p.field for p in caught.value.fields] == ["models[1].costCredits"]
    assert (fakes.db.models, fakes.db.presets) == ({}, {})
    # but the operator's refused attempt is in the audit log (the one commit)
    assert fakes.db.commits == 1
    [entry] = fakes.db.audit
    assert (entry.actor, entry.action, entry.outcome, entry.error_code) == (
        OPERATOR,
        AuditAction.APPLY_CATALOGUE,
        AuditOutcome.REFUSED,
        "INVALID_INPUT",
    )


async def test_a_dry_run_is_not_audited_an_apply_is(fakes: Fakes) -> None:
    # given a valid document, tried first
    doc = document(model())
    with pytest.raises(InvalidInput):
        await apply(fakes, document(model(costCredits=-1)), dry_run=True)
    await apply(fakes, doc, dry_run=True)
    assert fakes.db.audit == []
    # when it is applied (twice)
    await apply(fakes, doc)
    await apply(fakes, doc)
    # then only the apply that wrote left an entry, with what it did
    [entry] = fakes.db.audit
    assert (entry.actor, entry.actor_id, entry.outcome) == (OPERATOR, None, AuditOutcome.APPLIED)
    assert entry.details["models_create"] == 1


async def test_a_preset_name_stored_twice_is_refused_as_ambiguous(fakes: Fakes) -> None:
    # given a model with two stored presets of one name (upsertPreset allows that)
    await apply(fakes, document(model(presets=[])))
    image = next(iter(fakes.db.models.values()))
    for _ in range(2):
        twin = Preset(uuid.uuid4(), image.id, "Fast", {"steps": 4})
        fakes.db.presets[twin.id] = twin
    # when a document names that preset, then it is refused: which one is meant is unknowable
    with pytest.raises(InvalidInput) as caught:
        await apply(fakes, document(model()))
    assert [p.field for p in caught.value.fields] == ["models[0].presets[0].name"]
    # and nothing of the catalogue was written: the second commit is the refusal's audit entry
    assert fakes.db.commits == 2
    assert [e.outcome for e in fakes.db.audit] == [AuditOutcome.APPLIED, AuditOutcome.REFUSED]


async def test_a_preset_named_in_another_case_or_unicode_form_is_renamed_not_duplicated(fakes: Fakes) -> None:
    # given a stored preset "Cafe\u0301" (a decomposed e-acute)
    presets = [{"name": "Cafe\u0301", "params": {"steps": 4}}]
    await apply(fakes, document(model(presets=presets)))
    (stored,) = fakes.db.presets.values()
    # when the file names it "caf\u00e9" (composed, lower case)
    plan = await apply(fakes, document(model(presets=[{"name": "caf\u00e9", "params": {"steps": 4}}])))
    # then the same preset is renamed: no look-alike second preset appears
    assert [(p.action, p.changes) for p in plan.models[0].presets] == [
        (Action.UPDATE, (FieldChange("name", "Cafe\u0301", "caf\u00e9"),))
    ]
    assert list(fakes.db.presets.values()) == [dataclasses.replace(stored, name="caf\u00e9")]


async def test_a_model_deactivated_in_the_api_is_reactivated_by_the_document(fakes: Fakes) -> None:
    # the document is the whole truth of what it names: isActive defaults to true
    await apply(fakes, document(model()))
    stored = next(iter(fakes.db.models.values()))
    fakes.db.models[stored.id] = dataclasses.replace(stored, is_active=False)
    plan = await apply(fakes, document(model()))
    assert plan.models[0].changes == (FieldChange("isActive", False, True),)
    assert fakes.db.models[stored.id].is_active


async def test_export_gives_back_a_document_that_applies_as_unchanged(fakes: Fakes) -> None:
    # given a catalogue that was written through the API, not a document
    stored = AiModel(uuid.uuid4(), "api-model", "API", "kie", ModelKind.VIDEO, 5, STEPS, False)
    fakes.db.models[stored.id] = stored
    preset = Preset(uuid.uuid4(), stored.id, "Only", {"steps": 2})
    fakes.db.presets[preset.id] = preset
    # when it is exported and the export applied
    exported = await catalogue_files.export_catalogue(uow=fakes.uow)
    plan = await apply(fakes, exported)
    # then nothing changes
    assert not plan.writes and plan.count(Action.UNCHANGED) == (1, 1)


def test_json_changes_tell_kinds_apart_but_not_key_order() -> None:
    assert json_changes("x", {"a": 1, "b": 2}, {"b": 2, "a": 1}) == []
    assert json_changes("x", {"a": 1}, {"a": True}) == [FieldChange("x.a", 1, True)]
    assert json_changes("x", {"a": [1, 2]}, {"a": [2, 1]}) == [FieldChange("x.a", [1, 2], [2, 1])]
    assert json_changes("x", {"a": 1}, {"b": 1}) == [FieldChange("x.a", 1, NOT_SET), FieldChange("x.b", NOT_SET, 1)]
