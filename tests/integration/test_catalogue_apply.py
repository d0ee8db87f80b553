"""`genhub catalogue apply` on PostgreSQL: idempotent, all or nothing, safe to run twice at once, seen by every replica."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from domain.catalogue_plan import Action, CataloguePlan
from domain.errors import InvalidInput, NameTaken
from infrastructure.bootstrap import Services, open_services
from infrastructure.catalogue_files import parse_document
from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app
from tests.fixtures.credits import grant_credits
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
SIMULATED = ROOT / "deploy" / "catalogue" / "simulated.yaml"
KIE = ROOT / "deploy" / "catalogue" / "kie.yaml"
MODELS = "query Models { models { slug costCredits } }"
PRESETS = "query Presets { presets { id name model { slug } } }"
GENERATE = """
mutation Generate($input: GenerateInput!) {
  generate(input: $input) { __typename ... on GenerateSuccess { generation { status params } } }
}
"""


def sample(path: Path) -> Any:
    return parse_document(path.read_bytes(), json_format=False).document


def image_model(**fields: Any) -> dict[str, Any]:
    return {
        "slug": "house-image",
        "name": "House image",
        "provider": "simulated",
        "kind": "image",
        "costCredits": 5,
        "capabilities": {"params": {"steps": {"type": "int", "min": 1, "max": 50, "default": 20}}},
        "presets": [{"name": "Fast", "params": {"steps": 4}}, {"name": "Fine", "params": {"steps": 40}}],
        **fields,
    }


def document(*models: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "models": list(models)}


@pytest.fixture
async def operator(clean_postgres: str, make_settings: SettingsFactory) -> AsyncIterator[Services]:
    """The Services `genhub catalogue` opens."""
    async with open_services(make_settings(database_url=clean_postgres)) as services:
        yield services


Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


async def rows(dsn: str) -> Rows:
    """Every model row and every preset row as stored, with their ids and updated_at."""
    conn = await asyncpg.connect(dsn)
    try:
        models = await conn.fetch("SELECT id, slug, cost_credits, is_active, updated_at FROM models ORDER BY slug")
        presets = await conn.fetch(
            "SELECT p.id, m.slug, p.name, p.params::text, p.updated_at FROM presets p"
            " JOIN models m ON m.id = p.model_id ORDER BY m.slug, p.name"
        )
    finally:
        await conn.close()
    return [tuple(r) for r in models], [tuple(r) for r in presets]


async def apply(services: Services, doc: Any, *, dry_run: bool = False, prune: bool = False) -> CataloguePlan:
    return await services.catalogue.apply_document(doc, dry_run=dry_run, prune=prune)


async def test_the_samples_apply_and_apply_again_as_unchanged(operator: Services, postgres_dsn: str) -> None:
    # when both shipped samples are applied to an empty database
    for path in (SIMULATED, KIE):
        assert (await apply(operator, sample(path))).count(Action.CREATE)[0] >= 1
    stored = await rows(postgres_dsn)
    # then applying them again changes nothing, not even updated_at
    for path in (SIMULATED, KIE):
        again = await apply(operator, sample(path))
        assert not again.writes
        assert {m.action for m in again.models} <= {Action.UNCHANGED, Action.ABSENT}
    assert await rows(postgres_dsn) == stored
    slugs = [m.slug for m in await operator.catalogue.models(None)]
    assert slugs == ["nano-banana", "nano-banana-edit", "sim-image", "sim-video"]


async def test_a_dry_run_writes_nothing(operator: Services, postgres_dsn: str) -> None:
    plan = await apply(operator, sample(SIMULATED), dry_run=True)
    assert plan.writes and plan.count(Action.CREATE) == (2, 3)
    assert await rows(postgres_dsn) == ([], [])


async def test_one_changed_field_changes_that_field_only(operator: Services, postgres_dsn: str) -> None:
    # given an applied document
    await apply(operator, document(image_model()))
    before = await rows(postgres_dsn)
    # when one preset's params and the model's price change
    presets = [{"name": "Fast", "params": {"steps": 6}}, {"name": "Fine", "params": {"steps": 40}}]
    plan = await apply(operator, document(image_model(costCredits=7, presets=presets)))
    after = await rows(postgres_dsn)
    # then the plan says so, and the rows keep their ids; the unchanged preset is not rewritten
    assert [(c.field, c.before, c.after) for c in plan.models[0].changes] == [("costCredits", 5, 7)]
    assert [(p.name, p.action) for p in plan.models[0].presets] == [("Fast", Action.UPDATE), ("Fine", Action.UNCHANGED)]
    ([model_before], [fast_before, fine_before]), ([model_after], [fast_after, fine_after]) = before, after
    assert model_after[:4] == (model_before[0], "house-image", 7, True)
    assert fast_after[0] == fast_before[0] and fast_after[3] == '{"steps": 6}'
    assert fine_after == fine_before


async def test_an_invalid_file_writes_nothing(operator: Services, postgres_dsn: str) -> None:
    # given a document whose first model is valid and whose second preset of the second model is not
    bad = image_model(slug="second", presets=[{"name": "Ok", "params": {}}, {"name": "Bad", "params": {"steps": 0}}])
    # when it is applied, then it is refused whole, naming the problem, and no row was written
    with pytest.raises(InvalidInput) as caught:
        await apply(operator, document(image_model(), bad))
    assert [(p.field, p.message) for p in caught.value.fields] == [
        ("models[1].presets[1].params.steps", "must be at least 1")
    ]
    assert await rows(postgres_dsn) == ([], [])


async def test_prune_deactivates_a_model_that_generations_reference(
    clean_postgres: str, make_settings: SettingsFactory, postgres_dsn: str
) -> None:
    # given a model from an earlier file, with a generation of it
    settings = make_settings(database_url=clean_postgres, simulated_mode="hang")
    async with running_app(settings) as client:
        services = client.services
        await apply(services, document(image_model()))
        user = await register_user(client, "pruned@example.com")
        await grant_credits(client.container, uuid.UUID(user["user"]["id"]), 50)
        model_id = (await services.catalogue.models(None))[0].id
        variables = {"input": {"modelId": str(model_id), "prompt": "a lighthouse [hang]"}}
        started = await client.as_user(user["accessToken"]).execute(GENERATE, variables)
        assert started["data"]["generate"]["__typename"] == "GenerateSuccess"
        # when a file without it is applied with prune
        plan = await apply(services, sample(SIMULATED), prune=True)
        # then the model is deactivated, not deleted: its generation still reads it, its presets stay
        assert ("house-image", Action.DEACTIVATE) in [(m.slug, m.action) for m in plan.models]
        models, presets = await rows(postgres_dsn)
        assert [(m[1], m[3]) for m in models if m[1] == "house-image"] == [("house-image", False)]
        assert [p[2] for p in presets if p[1] == "house-image"] == ["Fast", "Fine"]
        listed = (await client.execute(MODELS))["data"]["models"]
        assert [m["slug"] for m in listed] == ["sim-image", "sim-video"]


async def test_two_applies_at_once_create_each_row_once(
    clean_postgres: str, make_settings: SettingsFactory, postgres_dsn: str
) -> None:
    # given four operators, each with its own engine, as four `genhub catalogue apply` processes would be
    settings = make_settings(database_url=clean_postgres)
    doc = sample(SIMULATED)
    async with (
        open_services(settings) as a,
        open_services(settings) as b,
        open_services(settings) as c,
        open_services(settings) as d,
    ):
        # when all of them apply the same file at the same moment
        plans = await asyncio.gather(*(apply(s, doc) for s in (a, b, c, d)))
    # then every model and preset exists once: exactly one apply created them, the others found them
    models, presets = await rows(postgres_dsn)
    assert [m[1] for m in models] == ["sim-image", "sim-video"]
    assert [p[1:3] for p in presets] == [
        ("sim-image", "Square sketch"),
        ("sim-image", "Widescreen photo"),
        ("sim-video", "Short clip"),
    ]
    assert sorted(p.count(Action.CREATE) for p in plans) == [(0, 0), (0, 0), (0, 0), (2, 3)]


ROUNDS = 10


async def upsert(services: Services, model_id: uuid.UUID, name: str) -> str:
    """What an admin's upsertPreset of a new preset gives: its stored name, or the refusal's kind."""
    try:
        preset = await services.catalogue.upsert_preset(None, preset_id=None, model_id=model_id, name=name, params={})
    except NameTaken:
        return "NameTaken"
    return preset.name


async def test_upserts_of_look_alike_names_at_once_store_one_preset(
    clean_postgres: str, make_settings: SettingsFactory, postgres_dsn: str
) -> None:
    # given a model, and four admins on four processes, each with a connection open
    settings = make_settings(database_url=clean_postgres)
    async with (
        open_services(settings) as a,
        open_services(settings) as b,
        open_services(settings) as c,
        open_services(settings) as d,
    ):
        await apply(a, document(image_model(presets=[])))
        model_id = (await a.catalogue.models(None))[0].id
        admins = (a, b, c, d)
        await asyncio.gather(*(s.catalogue.export_document() for s in admins))
        for round_ in range(ROUNDS):
            # when each adds a preset of a name the catalogue file cannot tell from the others, at the same moment
            names = [f"Portrait {round_}", f"portrait {round_}", f" PORTRAIT {round_} ", f"\uff30ortrait {round_}"]
            outcomes = await asyncio.gather(*(upsert(s, model_id, n) for s, n in zip(admins, names, strict=True)))
            # then one is stored and the three others are refused
            assert outcomes.count("NameTaken") == 3, outcomes
        # and the catalogue exports as a file that applies as unchanged
        _, presets = await rows(postgres_dsn)
        assert len(presets) == ROUNDS
        assert not (await apply(a, await a.catalogue.export_document())).writes


async def test_an_apply_and_an_upsert_at_once_never_add_a_look_alike(
    clean_postgres: str, make_settings: SettingsFactory, postgres_dsn: str
) -> None:
    # given a model, an operator applying files, and an admin adding presets, each with a connection open
    settings = make_settings(database_url=clean_postgres)
    async with open_services(settings) as operator, open_services(settings) as admin:
        await apply(operator, document(image_model(presets=[])))
        model_id = (await operator.catalogue.models(None))[0].id
        await admin.catalogue.export_document()
        for round_ in range(ROUNDS):
            # when a file adding "Portrait N" is applied while the admin adds "portrait N"
            presets = [{"name": f"Portrait {r}", "params": {"steps": 4}} for r in range(round_ + 1)]
            plan, added = await asyncio.gather(
                apply(operator, document(image_model(presets=presets))), upsert(admin, model_id, f"portrait {round_}")
            )
            # then the file's preset was created after the refused upsert, or renamed from the admin's
            action = plan.models[0].presets[-1].action
            assert (added, action) in (("NameTaken", Action.CREATE), (f"portrait {round_}", Action.UPDATE))
    # and the model has one preset of each name, the file's
    _, stored = await rows(postgres_dsn)
    assert sorted((p[2], p[3]) for p in stored) == sorted((f"Portrait {r}", '{"steps": 4}') for r in range(ROUNDS))


async def lists(client: GraphQLClient, slug: str) -> bool:
    return slug in [m["slug"] for m in (await client.execute(MODELS))["data"]["models"]]


@pytest.mark.redis
async def test_a_running_replica_sees_the_applied_catalogue_at_once(
    clean_postgres: str, clean_redis: str, make_settings: SettingsFactory
) -> None:
    # given a replica that has cached the empty catalogue for an hour
    settings = make_settings(database_url=clean_postgres, redis_url=clean_redis, catalogue_cache_ttl_seconds=3600)
    async with running_app(settings) as replica:
        assert (await replica.execute(MODELS))["data"]["models"] == []

        async def listening() -> bool:
            _, count = await replica.container.redis.execute_command("PUBSUB", "NUMSUB", "genhub:catalogue:invalidate")
            return int(count) >= 1

        await eventually(listening, what="the replica to listen for invalidations")
        # when the operator applies a file from another process's Services
        async with open_services(settings) as operator:
            await apply(operator, sample(SIMULATED))
        # then the replica serves the new models and presets without waiting for its TTL
        await eventually(
            lambda: lists(replica, "sim-video"), what="the replica to list the applied models", timeout=2.5
        )
        presets = (await replica.execute(PRESETS))["data"]["presets"]
        assert sorted(p["name"] for p in presets) == ["Short clip", "Square sketch", "Widescreen photo"]


async def test_a_generation_uses_a_preset_from_the_sample(clean_postgres: str, make_settings: SettingsFactory) -> None:
    # given a fresh deployment with the simulated sample applied: it is usable at once
    async with running_app(make_settings(database_url=clean_postgres)) as client:
        await apply(client.services, sample(SIMULATED))
        user = await register_user(client, "first@example.com")
        await grant_credits(client.container, uuid.UUID(user["user"]["id"]), 100)
        presets = (await client.execute(PRESETS))["data"]["presets"]
        sketch = next(p for p in presets if p["name"] == "Square sketch")
        image = next(m for m in await client.services.catalogue.models(None) if m.slug == "sim-image")
        # when a user generates with the sample's preset
        variables = {"input": {"modelId": str(image.id), "presetId": sketch["id"], "prompt": "a lighthouse"}}
        body = await client.as_user(user["accessToken"]).execute(GENERATE, variables)
        # then the generation starts with the preset's params over the model's defaults
        result = body["data"]["generate"]
        assert result["__typename"] == "GenerateSuccess"
        assert result["generation"]["params"] == {"width": 512, "height": 512, "style": "sketch"}
