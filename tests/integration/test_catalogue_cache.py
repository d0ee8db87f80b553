"""The catalogue cache on PostgreSQL: a refresh never stalls the pool, and a start is never priced from
an old snapshot (the start re-checks the model; an invalidation seen is never ignored)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)

pytestmark = pytest.mark.postgres

MODELS = "query Models { models { id costCredits } }"
HISTORY = "query History { generations(first: 20) { edges { node { id prompt model { slug costCredits } } } } }"
GENERATE = """
mutation Generate($input: GenerateInput!) {
  generate(input: $input) { __typename ... on GenerateSuccess { generation { id reservedCredits } } ... on Error { code } }
}
"""
#: Far below SQLAlchemy's pool timeout (30 s): a request that waited for it would not finish within.
WITHIN_SECONDS = 12


async def user_with_credits(client: GraphQLClient, amount: int = 100) -> tuple[GraphQLClient, uuid.UUID]:
    user = await register_user(client, f"cat-{uuid.uuid4().hex[:8]}@example.com")
    await operator_grant(client, user["user"]["id"], amount)
    return client.as_user(user["accessToken"]), uuid.UUID(user["user"]["id"])


async def reserves(client: GraphQLClient, user_id: uuid.UUID) -> tuple[list[int], bool]:
    """The amounts of the user's RESERVE rows, and whether the account equals its ledger's sums."""
    async with client.container.uow() as uow:
        rows = await uow.session.execute(
            text("SELECT amount FROM credit_ledger WHERE user_id = :u AND kind = 'reserve' ORDER BY created_at"),
            {"u": user_id},
        )
        amounts = [int(a) for (a,) in rows.all()]
        exact = await uow.credits.balance(user_id) == await uow.credits.ledger_totals(user_id)
    return amounts, exact


async def test_requests_at_cache_expiry_do_not_wait_for_the_pool(
    clean_postgres: str, make_settings: SettingsFactory
) -> None:
    # given a process with a pool of two connections, resolver-path reads, and a catalogue cache that expires
    settings = make_settings(
        database_url=clean_postgres,
        compiled_reads=False,
        database_pool_size=2,
        database_max_overflow=0,
        catalogue_cache_ttl_seconds=1,
        simulated_mode="hang",
    )
    async with running_app(settings) as client:
        me, _ = await user_with_credits(client)
        model_id = await operator_model(client, cost=1)
        for i in range(3):
            body = await me.execute(GENERATE, {"input": {"modelId": model_id, "prompt": f"pier {i} [hang]"}})
            assert body["data"]["generate"]["__typename"] == "GenerateSuccess"
        assert len((await me.execute(HISTORY))["data"]["generations"]["edges"]) == 3
        await asyncio.sleep(1.2)  # past the TTL: the next reads find the snapshot expired
        # when many history pages (each holding its scope's connection when it meets the
        # catalogue) and catalogue listings arrive at once
        async with asyncio.timeout(WITHIN_SECONDS):
            answers = await asyncio.gather(
                *[me.execute(HISTORY) for _ in range(8)], *[me.execute(MODELS) for _ in range(2)]
            )
        # then every one is answered (from the previous snapshot while the refresh ran), none waited for the pool
        pages, listings = answers[:8], answers[8:]
        for page in pages:
            edges = page["data"]["generations"]["edges"]
            assert len(edges) == 3 and all(e["node"]["model"]["costCredits"] == 1 for e in edges), page
        assert all(listing["data"]["models"] == [{"id": model_id, "costCredits": 1}] for listing in listings)


async def test_a_replica_with_an_old_snapshot_starts_a_repriced_model_at_its_new_cost(
    clean_postgres: str, make_settings: SettingsFactory
) -> None:
    # given two replicas without Redis (no invalidation reaches B) and an hour-long cache TTL
    settings = make_settings(database_url=clean_postgres, catalogue_cache_ttl_seconds=3600, simulated_mode="hang")
    async with running_app(settings) as replica_a, running_app(settings) as replica_b:
        model_id = await operator_model(replica_a, slug="repriced", cost=10)
        assert (await replica_b.execute(MODELS))["data"]["models"] == [{"id": model_id, "costCredits": 10}]
        # and the model repriced on A: B's snapshot still says 10
        await operator_model(replica_a, slug="repriced", cost=25)
        assert (await replica_b.container.catalogue.current_model(uuid.UUID(model_id))).cost_credits == 10
        me_on_b, user_id = await user_with_credits(replica_b)
        # when the user generates through B
        body = await me_on_b.execute(GENERATE, {"input": {"modelId": model_id, "prompt": "a quay [hang]"}})
        # then it starts at the new cost, never the old one: one reservation of 25, the ledger exact
        assert body["data"]["generate"]["__typename"] == "GenerateSuccess", body
        assert body["data"]["generate"]["generation"]["reservedCredits"] == 25
        assert await reserves(replica_b, user_id) == ([25], True)


async def test_a_replica_with_an_old_snapshot_does_not_start_a_deactivated_model(
    clean_postgres: str, make_settings: SettingsFactory
) -> None:
    # given two replicas without Redis and a model B has cached as active
    settings = make_settings(database_url=clean_postgres, catalogue_cache_ttl_seconds=3600, simulated_mode="hang")
    async with running_app(settings) as replica_a, running_app(settings) as replica_b:
        model_id = await operator_model(replica_a, slug="retired", cost=10)
        assert (await replica_b.execute(MODELS))["data"]["models"] == [{"id": model_id, "costCredits": 10}]
        # and the model deactivated on A
        await operator_model(replica_a, slug="retired", cost=10, active=False)
        me_on_b, user_id = await user_with_credits(replica_b)
        # when the user generates through B
        body = await me_on_b.execute(GENERATE, {"input": {"modelId": model_id, "prompt": "a quay [hang]"}})
        # then it is refused as a model that is not there, and nothing is reserved
        assert body["data"]["generate"] == {"__typename": "NotFound", "code": "NOT_FOUND"}
        assert await reserves(replica_b, user_id) == ([], True)


async def test_an_invalidation_seen_is_never_priced_past(clean_postgres: str, make_settings: SettingsFactory) -> None:
    # given a process that has read a model at cost 10
    settings = make_settings(database_url=clean_postgres, catalogue_cache_ttl_seconds=3600)
    async with running_app(settings) as client:
        model_id = uuid.UUID(await operator_model(client, cost=10))
        cache = client.container.catalogue
        assert (await cache.current_model(model_id)).cost_credits == 10
        # when the row changes behind the cache's back and then an invalidation arrives
        async with client.container.uow() as uow:
            await uow.session.execute(text("UPDATE models SET cost_credits = 30 WHERE id = :m"), {"m": model_id})
            await uow.commit()
        cache.drop_local()
        # then the next check for a start reads the new cost (the listing may still show the previous one)
        assert (await cache.current_model(model_id)).cost_credits == 30
