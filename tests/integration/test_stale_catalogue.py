"""A replica whose catalogue cache predates a model still reads generations of that model (PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest

from domain.use_cases import catalogue
from tests.fixtures.app import SettingsFactory, operator_model, register_user, running_app

pytestmark = pytest.mark.postgres

MODELS = "query Models { models { slug } }"
GENERATE = """
mutation Generate($input: GenerateInput!) {
  generate(input: $input) { __typename ... on GenerateSuccess { generation { id } } }
}
"""
GENERATIONS = "query Page { generations(first: 10) { edges { node { id model { slug } preset { name } } } } }"
GENERATION = "query One($id: ID!) { generation(id: $id) { id model { slug } } }"


async def test_a_generation_reads_with_its_model_on_a_replica_with_a_stale_cache(
    clean_postgres: str, make_settings: SettingsFactory
) -> None:
    # given two replicas without Redis (so no invalidation reaches B) and an hour-long cache TTL
    settings = make_settings(database_url=clean_postgres, catalogue_cache_ttl_seconds=3600, simulated_mode="hang")
    async with running_app(settings) as replica_a, running_app(settings) as replica_b:
        assert (await replica_b.execute(MODELS))["data"]["models"] == []  # B has cached the empty catalogue
        # and a model, a preset and a generation of both created on replica A
        model_id = await operator_model(replica_a, slug="made-on-a", cost=0)
        c = replica_a.container
        preset = await catalogue.upsert_preset(
            actor=None,
            preset_id=None,
            model_id=uuid.UUID(model_id),
            name="Preset on A",
            params={},
            uow=c.uow(),
            catalogue=c.catalogue,
        )
        user = await register_user(replica_a, "stale@example.com")
        variables = {"input": {"modelId": model_id, "presetId": str(preset.id), "prompt": "a lighthouse [hang]"}}
        started = (await replica_a.as_user(user["accessToken"]).execute(GENERATE, variables))["data"]["generate"]
        assert started["__typename"] == "GenerateSuccess"
        assert await replica_b.container.catalogue.model(uuid.UUID(model_id)) is None  # B's snapshot is stale
        # when the user reads the generations through replica B
        me_on_b = replica_b.as_user(user["accessToken"])
        page = (await me_on_b.execute(GENERATIONS))["data"]["generations"]["edges"]
        one = (await me_on_b.execute(GENERATION, {"id": started["generation"]["id"]}))["data"]["generation"]
        # then the list is not nulled: each generation carries its model (and preset) from the database
        assert [e["node"]["model"] for e in page] == [{"slug": "made-on-a"}]
        assert [e["node"]["preset"] for e in page] == [{"name": "Preset on A"}]
        assert one["model"] == {"slug": "made-on-a"}
