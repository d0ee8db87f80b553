"""Catalogue use cases (domain/use_cases/catalogue.py) with in-memory fakes: reads, admin writes, settings."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.catalogue import AiModel, ModelKind, Preset
from domain.catalogue_document import MAX_PRESETS_PER_MODEL, preset_key
from domain.catalogue_plan import Action
from domain.errors import Forbidden, InvalidInput, NameTaken, NotFound
from domain.use_cases import catalogue, catalogue_files
from domain.users import Principal, Role
from tests.unit.fakes import Fakes, principal_of

PROVIDERS = frozenset({"fake", "kie"})
STEPS = {"params": {"steps": {"type": "int", "min": 1, "max": 50, "default": 20}}}
SLUG = "flux-pro"


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def admin(fakes: Fakes) -> Principal:
    return principal_of(fakes.user(role=Role.ADMIN))


@pytest.fixture
def user(fakes: Fakes) -> Principal:
    return principal_of(fakes.user())


async def upsert_model(fakes: Fakes, actor: Principal | None, **fields: Any) -> AiModel:
    values: dict[str, Any] = {
        "slug": SLUG,
        "name": "Flux Pro",
        "provider": "fake",
        "kind": ModelKind.IMAGE,
        "cost_credits": 12,
        "capabilities": STEPS,
        "is_active": None,
        **fields,
    }
    return await catalogue.upsert_model(
        actor=actor, known_providers=PROVIDERS, uow=fakes.uow, catalogue=fakes.catalogue, **values
    )


async def upsert_preset(
    fakes: Fakes, actor: Principal | None, model_id: uuid.UUID, *, preset_id: uuid.UUID | None = None, **fields: Any
) -> Preset:
    values: dict[str, Any] = {"name": "Fast", "params": {"steps": 4}, **fields}
    return await catalogue.upsert_preset(
        actor=actor, preset_id=preset_id, model_id=model_id, uow=fakes.uow, catalogue=fakes.catalogue, **values
    )


# ------------------------------------------------------------------ reads


async def test_listing_shows_active_models_of_the_asked_kind(fakes: Fakes) -> None:
    image, video = fakes.model(slug="b-image"), fakes.model(slug="a-video", kind=ModelKind.VIDEO)
    fakes.model(slug="c-old", active=False)
    assert await catalogue.list_models(kind=None, catalogue=fakes.catalogue) == [image, video]
    assert await catalogue.list_models(kind=ModelKind.VIDEO, catalogue=fakes.catalogue) == [video]


async def test_only_admins_list_inactive_models(fakes: Fakes, admin: Principal, user: Principal) -> None:
    old = fakes.model(active=False)
    listed = await catalogue.list_models(kind=None, catalogue=fakes.catalogue, include_inactive=True, actor=admin)
    assert listed == [old]
    for actor in (user, None):
        with pytest.raises(Forbidden):
            await catalogue.list_models(kind=None, catalogue=fakes.catalogue, include_inactive=True, actor=actor)


async def test_presets_are_listed_for_one_model_or_all(fakes: Fakes) -> None:
    one, other = fakes.model(), fakes.model()
    mine, theirs = fakes.preset(one), fakes.preset(other)
    assert await catalogue.list_presets(model_id=one.id, catalogue=fakes.catalogue) == [mine]
    assert set(p.id for p in await catalogue.list_presets(model_id=None, catalogue=fakes.catalogue)) == {
        mine.id,
        theirs.id,
    }


# ------------------------------------------------------------------ models


async def test_an_admin_adds_a_model_and_every_cache_is_told(fakes: Fakes, admin: Principal) -> None:
    model = await upsert_model(fakes, admin, name="  Flux Pro  ")
    assert fakes.db.models[model.id] == model
    assert (model.slug, model.name, model.cost_credits, model.is_active) == (SLUG, "Flux Pro", 12, True)
    assert model.capabilities == STEPS and fakes.catalogue.invalidations == 1
    assert await catalogue.list_models(kind=None, catalogue=fakes.catalogue) == [model]


async def test_an_update_by_slug_keeps_the_id_and_what_was_left_out(fakes: Fakes, admin: Principal) -> None:
    # given a deactivated model
    first = await upsert_model(fakes, admin, is_active=False)
    # when it is written again without capabilities or isActive
    second = await upsert_model(fakes, admin, cost_credits=15, capabilities=None)
    # then it is the same model, with the new cost and its old capabilities and state
    assert second.id == first.id and len(fakes.db.models) == 1
    assert (second.cost_credits, second.capabilities, second.is_active) == (15, STEPS, False)
    assert fakes.catalogue.invalidations == 2


async def test_a_user_may_not_write_models(fakes: Fakes, user: Principal) -> None:
    with pytest.raises(Forbidden):
        await upsert_model(fakes, user)
    assert fakes.db.models == {} and fakes.catalogue.invalidations == 0


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"provider": "openai"}, "provider"),
        ({"slug": "Bad Slug"}, "slug"),
        ({"cost_credits": -1}, "costCredits"),
        ({"capabilities": {"maxInputs": 99}}, "capabilities.maxInputs"),
        (
            {"capabilities": {"params": {"steps": {"type": "int", "default": "many"}}}},
            "capabilities.params.steps.default",
        ),
    ],
)
async def test_a_malformed_model_is_refused_and_nothing_changes(
    fakes: Fakes, admin: Principal, fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidInput) as invalid:
        await upsert_model(fakes, admin, **fields)
    assert problem in [p.field for p in invalid.value.fields]
    assert fakes.db.models == {} and fakes.catalogue.invalidations == 0


async def test_the_operator_may_write_models(fakes: Fakes) -> None:
    assert (await upsert_model(fakes, None)).slug == SLUG


# ------------------------------------------------------------------ presets


async def test_an_admin_adds_and_then_renames_a_preset(fakes: Fakes, admin: Principal) -> None:
    model = fakes.model(**STEPS)
    preset = await upsert_preset(fakes, admin, model.id, name=" Fast ")
    assert fakes.db.presets[preset.id] == preset == Preset(preset.id, model.id, "Fast", {"steps": 4})
    renamed = await upsert_preset(fakes, admin, model.id, preset_id=preset.id, name="Quick", params={"steps": 8})
    assert renamed.id == preset.id and fakes.db.presets[preset.id].name == "Quick"
    assert len(fakes.db.presets) == 1 and fakes.catalogue.invalidations == 2


async def test_a_model_holds_at_most_its_cap_of_presets(fakes: Fakes, admin: Principal) -> None:
    # given a model with as many presets as a model may hold
    model, other = fakes.model(**STEPS), fakes.model(**STEPS)
    full = [fakes.preset(model, steps=4) for _ in range(MAX_PRESETS_PER_MODEL)]
    # when an admin adds one more
    with pytest.raises(InvalidInput) as refused:
        await upsert_preset(fakes, admin, model.id, name="one too many")
    # then it is refused naming the model, while changing one of them and adding to another model still work
    assert refused.value.fields[0].field == "modelId" and str(MAX_PRESETS_PER_MODEL) in refused.value.fields[0].message
    await upsert_preset(fakes, admin, model.id, preset_id=full[0].id, name="renamed")
    await upsert_preset(fakes, admin, other.id, name="elsewhere")
    assert len([p for p in fakes.db.presets.values() if p.model_id == model.id]) == MAX_PRESETS_PER_MODEL


async def test_preset_params_must_suit_the_model(fakes: Fakes, admin: Principal) -> None:
    model = fakes.model(**STEPS)
    with pytest.raises(InvalidInput) as invalid:
        await upsert_preset(fakes, admin, model.id, params={"steps": 0, "seed": 1})
    assert sorted(p.field for p in invalid.value.fields) == ["params.seed", "params.steps"]
    assert fakes.db.presets == {}


async def test_a_blank_name_and_a_non_object_are_reported_together(fakes: Fakes, admin: Principal) -> None:
    model = fakes.model(**STEPS)
    with pytest.raises(InvalidInput) as invalid:
        await upsert_preset(fakes, admin, model.id, name=" ", params=[1])
    assert sorted(p.field for p in invalid.value.fields) == ["name", "params"]


async def test_unknown_model_or_preset_and_a_move_between_models(fakes: Fakes, admin: Principal) -> None:
    model, other = fakes.model(**STEPS), fakes.model(**STEPS)
    preset = fakes.preset(model, steps=4)
    with pytest.raises(NotFound) as no_model:
        await upsert_preset(fakes, admin, uuid.uuid4())
    with pytest.raises(NotFound) as no_preset:
        await upsert_preset(fakes, admin, model.id, preset_id=uuid.uuid4())
    with pytest.raises(InvalidInput) as moved:
        await upsert_preset(fakes, admin, other.id, preset_id=preset.id)
    assert (no_model.value.entity, no_preset.value.entity) == ("model", "preset")
    assert moved.value.fields[0].field == "modelId"
    assert fakes.db.presets == {preset.id: preset} and fakes.catalogue.invalidations == 0


@pytest.mark.parametrize(
    ("stored", "given"),
    [
        ("Portrait", "portrait"),
        ("Portrait", " PORTRAIT "),
        ("Cafe\u0301", "caf\u00e9"),  # decomposed and composed e-acute
        ("Stra\u00dfe", "STRASSE"),  # sharp s folds to ss
        ("Portrait", "\uff30ortrait"),  # a fullwidth P (compatibility form)
        ("\u2160", "I"),  # the Roman numeral one
    ],
)
async def test_a_preset_name_another_preset_has_in_another_form_is_taken(
    fakes: Fakes, admin: Principal, stored: str, given: str
) -> None:
    # given a model with a preset, and another preset of it
    model = fakes.model(**STEPS)
    first = await upsert_preset(fakes, admin, model.id, name=stored)
    other = await upsert_preset(fakes, admin, model.id, name="Other")
    # when a new preset, or the other one renamed, takes a name the catalogue file could not tell apart
    for preset_id in (None, other.id):
        with pytest.raises(NameTaken) as taken:
            await upsert_preset(fakes, admin, model.id, preset_id=preset_id, name=given)
        # then it is refused on the name, as InvalidInput, under the catalogue lock, and nothing changes
        assert isinstance(taken.value, InvalidInput) and [p.field for p in taken.value.fields] == ["name"]
        assert repr(stored) in taken.value.fields[0].message
    assert sorted(p.name for p in fakes.db.presets.values()) == sorted([stored.strip(), "Other"])
    assert fakes.db.catalogue_locks == 4
    # and the preset itself may be renamed to another form of its own name, and the name used on another model
    renamed = await upsert_preset(fakes, admin, model.id, preset_id=first.id, name=given)
    assert fakes.db.presets[first.id].name == renamed.name == given.strip()
    elsewhere = await upsert_preset(fakes, admin, fakes.model(**STEPS).id, name=given)
    assert elsewhere.name == given.strip()


NAMES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=20).filter(
    lambda name: bool(name.strip())
)


@settings(max_examples=200, deadline=None)
@given(stored=NAMES, given=NAMES)
async def test_upsert_preset_and_the_catalogue_file_agree_on_which_names_are_the_same(stored: str, given: str) -> None:
    # given a stored preset of any name
    fakes = Fakes()
    admin = principal_of(fakes.user(role=Role.ADMIN))
    model = fakes.model(**STEPS)
    await upsert_preset(fakes, admin, model.id, name=stored)
    # when a second preset of any name is added
    try:
        await upsert_preset(fakes, admin, model.id, name=given)
    except NameTaken:
        added = False
    else:
        added = True
    # then it is refused exactly when the catalogue file would match it to the first
    assert added == (preset_key(stored) != preset_key(given))
    # and the stored catalogue always exports as a file that applies, as unchanged
    exported = await catalogue_files.export_catalogue(uow=fakes.uow)
    plan = await catalogue_files.apply_catalogue(
        document=exported,
        dry_run=True,
        prune=False,
        known_providers=PROVIDERS,
        uow=fakes.uow,
        catalogue=fakes.catalogue,
    )
    assert not plan.writes and plan.count(Action.UNCHANGED) == (1, len(fakes.db.presets))


async def test_a_user_may_not_write_presets(fakes: Fakes, user: Principal) -> None:
    model = fakes.model(**STEPS)
    with pytest.raises(Forbidden):
        await upsert_preset(fakes, user, model.id)
    assert fakes.db.presets == {}


# ------------------------------------------------------------------ admin settings


async def test_an_admin_sets_and_lists_settings(fakes: Fakes, admin: Principal) -> None:
    assert await catalogue.set_setting(actor=admin, key="site.banner", value={"text": "hi"}, uow=fakes.uow) == (
        "site.banner",
        {"text": "hi"},
    )
    await catalogue.set_setting(actor=admin, key="a_limit", value=3, uow=fakes.uow)
    listed = await catalogue.list_settings(actor=admin, uow=fakes.uow)
    assert listed == [("a_limit", 3), ("site.banner", {"text": "hi"})] == sorted(fakes.db.settings.items())


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("Bad Key", 1, "key"),
        ("", 1, "key"),
        ("ok", None, "value"),
        ("ok", {"x": float("nan")}, "value"),
        ("ok", "a\x00", "value"),
    ],
)
async def test_bad_settings_are_refused(fakes: Fakes, admin: Principal, key: str, value: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as invalid:
        await catalogue.set_setting(actor=admin, key=key, value=value, uow=fakes.uow)
    assert [p.field for p in invalid.value.fields] == [field] and fakes.db.settings == {}


async def test_users_neither_read_nor_write_settings(fakes: Fakes, user: Principal) -> None:
    fakes.db.settings["secret"] = 1
    with pytest.raises(Forbidden):
        await catalogue.list_settings(actor=user, uow=fakes.uow)
    with pytest.raises(Forbidden):
        await catalogue.set_setting(actor=user, key="secret", value=2, uow=fakes.uow)
    assert fakes.db.settings == {"secret": 1}
