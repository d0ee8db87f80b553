"""deleteGeneration / deleteGenerations on PostgreSQL through the real app (embedded worker, local storage).

A deleted generation leaves no row (assets, inputs' links, provider tasks) and, once the
outbox is drained, no object; its ledger rows stay without the generation and the balance
still sums. Only the owner deletes (others: NotFound), never a running generation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from domain.generations import Generation
from tests.fixtures.waiting import eventually
from tests.integration.asgi_websocket import AsgiWebSocket
from tests.integration.board_world import GENERATE, World, module_world, with_board

pytestmark = pytest.mark.postgres

DELETE = """
mutation Delete($id: ID!) {
  deleteGeneration(id: $id) {
    __typename
    ... on DeleteGenerationSuccess { generationId }
    ... on Error { code message }
  }
}
"""
DELETE_MANY = """
mutation DeleteMany($ids: [ID!]!) {
  deleteGenerations(ids: $ids) {
    __typename
    ... on DeleteGenerationsSuccess {
      deletedCount
      results { generationId deleted error { __typename ... on Error { code message } } }
    }
    ... on InvalidInput { code fields { field message } }
  }
}
"""
LEDGER = "query Ledger { creditLedger(first: 50) { edges { node { kind amount generationId } } } }"
GENERATION = "query One($id: ID!) { generation(id: $id) { id } }"
HANGING = """
mutation Generate($modelId: ID!) {
  generate(input: {modelId: $modelId, prompt: "a slow tide [hang]"}) {
    ... on GenerateSuccess { generation { id } }
  }
}
"""


@pytest.fixture(scope="module")
async def personas(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with module_world(postgres_dsn, tmp_path_factory.mktemp("deletion"), rate_limit_generate=10_000) as world:
        yield world


async def _row(world: World, generation_id: str) -> Generation | None:
    async with world.client.container.uow() as uow:
        return await uow.generations.get(uuid.UUID(generation_id))


async def finished(world: World, persona: str = "owner", *, board_id: str | None = None) -> str:
    """A generation of `persona` that succeeded, its outputs stored and thumbnailed."""
    body = await world.data(persona, GENERATE, {"modelId": world.model_id, "boardId": board_id})
    generation_id: str = body["generate"]["generation"]["id"]

    async def settled() -> bool:
        row = await _row(world, generation_id)
        return row is not None and row.is_final and row.thumbnails_pending == 0

    await eventually(settled, what="the generation to finish with its thumbnails", timeout=20)
    return generation_id


async def hanging(world: World, persona: str = "owner") -> str:
    body = await world.data(persona, HANGING, {"modelId": world.model_id})
    generation_id: str = body["generate"]["generation"]["id"]
    return generation_id


async def object_keys(world: World, generation_id: str) -> list[str]:
    async with world.client.container.uow() as uow:
        assets = await uow.generations.assets_of([uuid.UUID(generation_id)])
    return [a.object_key for a in assets.get(uuid.UUID(generation_id), [])]


async def rows_naming(world: World, generation_id: str) -> dict[str, int]:
    """How many rows of each table still name the generation."""
    queries = {
        "generations": "SELECT count(*) FROM generations WHERE id = :id",
        "assets": "SELECT count(*) FROM assets WHERE generation_id = :id",
        "generation_inputs": "SELECT count(*) FROM generation_inputs WHERE generation_id = :id",
        "provider_tasks": "SELECT count(*) FROM provider_tasks WHERE generation_id = :id",
        "credit_ledger": "SELECT count(*) FROM credit_ledger WHERE generation_id = :id",
    }
    async with world.client.container.engine.connect() as conn:
        return {
            table: int((await conn.execute(text(sql), {"id": uuid.UUID(generation_id)})).scalar_one())
            for table, sql in queries.items()
        }


async def objects_gone(world: World, keys: list[str]) -> None:
    storage = world.client.container.storage

    async def gone() -> bool:
        async with world.client.container.uow() as uow:
            named = await uow.storage_deletions.referenced(keys)
        return not named and all([await storage.head(k) is None for k in keys])

    await eventually(gone, what="the outbox to delete the objects and then its rows", timeout=10)


async def balance_sums(world: World, persona: str) -> None:
    user = uuid.UUID(world.user_ids[persona])
    async with world.client.container.uow() as uow:
        assert await uow.credits.balance(user) == await uow.credits.ledger_totals(user)


# ---------------------------------------------------------------- one


async def test_the_owner_deletes_a_generation_its_rows_and_objects(personas: World) -> None:
    # given a generation that succeeded, with an output and its thumbnail in storage
    world = personas
    generation_id = await finished(world)
    keys = await object_keys(world, generation_id)
    assert len(keys) >= 2  # the output and its thumbnail
    ledger_before = (await world.data("owner", LEDGER))["creditLedger"]["edges"]
    # when its owner deletes it
    body = await world.data("owner", DELETE, {"id": generation_id})
    # then it is gone, with every row naming it; its objects follow through the outbox
    assert body["deleteGeneration"] == {"__typename": "DeleteGenerationSuccess", "generationId": generation_id}
    assert await rows_naming(world, generation_id) == dict.fromkeys(
        ("generations", "assets", "generation_inputs", "provider_tasks", "credit_ledger"), 0
    )
    await objects_gone(world, keys)
    assert (await world.data("owner", GENERATION, {"id": generation_id}))["generation"] is None
    # and the ledger keeps every row, the deleted generation's no longer pointing at it
    ledger_after = (await world.data("owner", LEDGER))["creditLedger"]["edges"]
    assert len(ledger_after) == len(ledger_before)
    named = [e["node"]["kind"] for e in ledger_before if e["node"]["generationId"] == generation_id]
    assert named  # its reservation and capture
    assert all(e["node"]["generationId"] != generation_id for e in ledger_after)
    assert sum(e["node"]["amount"] for e in ledger_after) == sum(e["node"]["amount"] for e in ledger_before)
    await balance_sums(world, "owner")


async def test_a_replayed_deletion_is_not_found(personas: World) -> None:
    world = personas
    generation_id = await finished(world)
    first = await world.data("owner", DELETE, {"id": generation_id})
    again = await world.data("owner", DELETE, {"id": generation_id})
    assert first["deleteGeneration"]["__typename"] == "DeleteGenerationSuccess"
    assert again["deleteGeneration"]["__typename"] == "NotFound"


@pytest.mark.parametrize("persona", ["other", "editor", "viewer", "admin"])
async def test_nobody_but_the_owner_deletes_and_nobody_learns_it_exists(personas: World, persona: str) -> None:
    # given a board generation that the board's members can read
    world = await with_board(personas)
    generation_id = await finished(world, board_id=world.board_id)
    # when someone else deletes it
    body = await world.data(persona, DELETE, {"id": generation_id})
    # then it is NotFound, exactly as an id that never existed, and the generation stays
    unknown = await world.data(persona, DELETE, {"id": str(uuid.uuid4())})
    assert body["deleteGeneration"] == unknown["deleteGeneration"]
    assert body["deleteGeneration"]["__typename"] == "NotFound"
    assert await _row(world, generation_id) is not None


async def test_a_running_generation_is_refused_until_canceled(personas: World) -> None:
    # given a generation still running, its credits held
    world = personas
    generation_id = await hanging(world)
    # when its owner deletes it
    body = await world.data("owner", DELETE, {"id": generation_id})
    # then it is refused with InvalidState, nothing changed
    assert body["deleteGeneration"]["__typename"] == "InvalidState"
    assert "cancel" in body["deleteGeneration"]["message"]
    assert (await rows_naming(world, generation_id))["generations"] == 1
    # and once canceled (its reservation released) it can be deleted
    canceled = await world.data(
        "owner", "mutation C($id: ID!) { cancelGeneration(id: $id) { __typename } }", {"id": generation_id}
    )
    assert canceled["cancelGeneration"]["__typename"] == "CancelSuccess"
    assert (await world.data("owner", DELETE, {"id": generation_id}))["deleteGeneration"]["__typename"] == (
        "DeleteGenerationSuccess"
    )
    await balance_sums(world, "owner")


async def test_malformed_ids_are_not_found(personas: World) -> None:
    for bad in ("", "not-a-uuid", "1" * 300, "00000000-0000-0000-0000-00000000000g"):
        body = await personas.data("owner", DELETE, {"id": bad})
        assert body["deleteGeneration"]["__typename"] == "NotFound", bad


async def test_concurrent_deletions_of_one_generation_one_wins(personas: World) -> None:
    world = personas
    generation_id = await finished(world)
    keys = await object_keys(world, generation_id)
    bodies = await asyncio.gather(*[world.data("owner", DELETE, {"id": generation_id}) for _ in range(8)])
    kinds = sorted(b["deleteGeneration"]["__typename"] for b in bodies)
    assert kinds == ["DeleteGenerationSuccess"] + ["NotFound"] * 7
    await objects_gone(world, keys)


# ---------------------------------------------------------------- many


async def test_a_batch_deletes_what_it_may_and_says_why_not_for_the_rest(personas: World) -> None:
    # given two of the owner's ended generations, one running, one of another user's, an unknown id
    world = personas
    mine = [await finished(world), await finished(world)]
    running = await hanging(world)
    theirs = await finished(world, "other")
    unknown = str(uuid.uuid4())
    ids = [mine[0], running, theirs, mine[1], unknown, "garbage", mine[0]]
    keys = [k for g in mine for k in await object_keys(world, g)]
    # when the owner deletes them all at once
    body = (await world.data("owner", DELETE_MANY, {"ids": ids}))["deleteGenerations"]
    # then each distinct id has its outcome, in order, and only the owner's ended ones went
    outcome = {r["generationId"]: (r["deleted"], r["error"] and r["error"]["__typename"]) for r in body["results"]}
    assert [r["generationId"] for r in body["results"]] == [mine[0], running, theirs, mine[1], unknown, "garbage"]
    assert outcome == {
        mine[0]: (True, None),
        running: (False, "InvalidState"),
        theirs: (False, "NotFound"),
        mine[1]: (True, None),
        unknown: (False, "NotFound"),
        "garbage": (False, "NotFound"),
    }
    assert body["deletedCount"] == 2
    assert await _row(world, running) is not None and await _row(world, theirs) is not None
    await objects_gone(world, keys)
    await balance_sums(world, "owner")


@pytest.mark.parametrize("count", [0, 101])
async def test_a_batch_names_1_to_100_generations(personas: World, count: int) -> None:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    body = (await personas.data("owner", DELETE_MANY, {"ids": ids}))["deleteGenerations"]
    assert body["__typename"] == "InvalidInput"
    assert body["fields"][0]["field"] == "ids"


async def test_a_hundred_ids_repeated_count_once(personas: World) -> None:
    ids = [str(uuid.uuid4()) for _ in range(100)] * 3
    body = (await personas.data("owner", DELETE_MANY, {"ids": ids}))["deleteGenerations"]
    assert body["__typename"] == "DeleteGenerationsSuccess"
    assert len(body["results"]) == 100 and body["deletedCount"] == 0


id_text = st.one_of(
    st.uuids().map(str),
    st.text(max_size=60),
    st.uuids().map(lambda u: str(u).upper()),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(id_text, min_size=1, max_size=20))
async def test_hostile_id_lists_never_delete_anything_not_the_viewers(personas: World, ids: list[str]) -> None:
    # given a generation of another user among hostile ids
    world = personas
    body = await world.run("other", DELETE_MANY, {"ids": ids})
    if "errors" in body:
        # only text no database can store is refused before the resolver (NUL, lone surrogates)
        assert all(e["extensions"]["code"] == "INVALID_INPUT" for e in body["errors"]), body
        return
    result: dict[str, Any] = body["data"]["deleteGenerations"]
    if result["__typename"] == "InvalidInput":
        return
    assert result["deletedCount"] == 0
    assert all(r["error"]["__typename"] == "NotFound" for r in result["results"])


# ---------------------------------------------------------------- subscriptions


WATCH = "subscription W($id: ID!) { generationUpdated(id: $id) { generation { id status } } }"


async def watching(world: World, persona: str, generation_id: str) -> AsgiWebSocket:
    ws = AsgiWebSocket(world.client.app)
    await ws.__aenter__()
    await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {world.tokens[persona]}"}})
    assert (await ws.receive_json())["type"] == "connection_ack"
    await ws.send_json(
        {"id": "1", "type": "subscribe", "payload": {"query": WATCH, "variables": {"id": generation_id}}}
    )
    first = await ws.receive_json()
    assert (
        first["type"] == "next" and first["payload"]["data"]["generationUpdated"]["generation"]["id"] == generation_id
    )
    return ws


async def test_watches_of_a_deleted_generation_end(personas: World) -> None:
    # given a board generation still waiting for a thumbnail, watched by its owner and by a board viewer
    world = await with_board(personas)
    generation_id = await finished(world, board_id=world.board_id)
    async with world.client.container.engine.begin() as conn:
        await conn.execute(
            text("UPDATE generations SET thumbnails_pending = 1 WHERE id = :id"), {"id": uuid.UUID(generation_id)}
        )
    owner = await watching(world, "owner", generation_id)
    viewer = await watching(world, "viewer", generation_id)
    try:
        # when the owner deletes it
        assert (await world.data("owner", DELETE, {"id": generation_id}))["deleteGeneration"]["__typename"] == (
            "DeleteGenerationSuccess"
        )
        # then each watch shows its last state and completes (nothing more will come)
        for ws in (owner, viewer):
            last = await ws.receive_json()
            assert last["type"] == "next", last
            assert last["payload"]["data"]["generationUpdated"]["generation"]["id"] == generation_id
            assert (await ws.receive_json())["type"] == "complete"
        # and a new watch is NotFound
        async with AsgiWebSocket(world.client.app) as late:
            await late.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {world.tokens['owner']}"}}
            )
            assert (await late.receive_json())["type"] == "connection_ack"
            await late.send_json(
                {"id": "1", "type": "subscribe", "payload": {"query": WATCH, "variables": {"id": generation_id}}}
            )
            refused = await late.receive_json()
            codes = (
                [e["extensions"]["code"] for e in refused["payload"]]
                if refused["type"] == "error"
                else [e["extensions"]["code"] for e in refused["payload"]["errors"]]
            )
            assert codes == ["NOT_FOUND"], refused
    finally:
        await owner.__aexit__(None, None, None)
        await viewer.__aexit__(None, None, None)


# ---------------------------------------------------------------- locks


async def _lockable(world: World, generation_id: str) -> bool:
    """Whether a second connection can lock the generation's row at once (NOWAIT)."""
    async with world.client.container.engine.connect() as conn, conn.begin():
        await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
        try:
            await conn.execute(
                text("SELECT id FROM generations WHERE id = :id FOR UPDATE NOWAIT"), {"id": uuid.UUID(generation_id)}
            )
        except Exception as exc:
            assert "could not obtain lock" in str(exc), exc
            return False
        return True


async def test_a_deletion_locks_only_the_viewers_own_rows(personas: World) -> None:
    # given a generation of the owner and one of another user (ended: no worker of ours touches it now)
    world = personas
    mine = await finished(world)
    theirs = await finished(world, "other")
    # when the owner's deletion transaction has read (and locked) the ids it was given, both among them
    async with world.client.container.uow() as uow:
        found = await uow.generations.lock_many(
            [uuid.UUID(theirs), uuid.UUID(mine)], user_id=uuid.UUID(world.user_ids["owner"])
        )
        # then only the owner's row is returned and locked; the other user's stays free for its workers
        assert [str(g.id) for g in found] == [mine]
        assert await _lockable(world, theirs)
        assert not await _lockable(world, mine)
    assert await _lockable(world, mine)
