"""Deletion in the embedded default (SQLite, in-process tasks, local storage): a generation, a board and an
account are deleted, their objects too; the e-mail registers again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)
from tests.fixtures.waiting import eventually

PASSWORD = "correct horse battery"
GENERATE = """
mutation G($m: ID!, $b: ID) { generate(input: {modelId: $m, prompt: "a pier", boardId: $b}) {
  ... on GenerateSuccess { generation { id } } } }
"""


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings(storage_deletion_sweep_seconds=1)) as c:
        yield c


async def settled(client: GraphQLClient, generation_id: str) -> None:
    async def done() -> bool:
        async with client.container.uow() as uow:
            g = await uow.generations.get(uuid.UUID(generation_id))
        return g is not None and g.is_final and g.thumbnails_pending == 0

    await eventually(done, what="the generation to settle", timeout=20)


async def keys_of(client: GraphQLClient, generation_id: str) -> list[str]:
    async with client.container.uow() as uow:
        assets = await uow.generations.assets_of([uuid.UUID(generation_id)])
    return [a.object_key for a in assets.get(uuid.UUID(generation_id), [])]


async def gone(client: GraphQLClient, keys: list[str]) -> None:
    storage = client.container.storage

    async def none_left() -> bool:
        async with client.container.uow() as uow:
            queued = await uow.storage_deletions.count()
        return queued == 0 and all([await storage.head(k) is None for k in keys])

    await eventually(none_left, what="the objects, then their outbox rows, to be deleted", timeout=10)


async def test_generation_board_and_account_deletion_on_sqlite(client: GraphQLClient) -> None:
    # given a user with a board and two finished generations (one in the board)
    model = await operator_model(client)
    auth = await register_user(client, "embedded@example.com", PASSWORD)
    me = client.as_user(auth["accessToken"])
    await operator_grant(client, auth["user"]["id"], 100)
    board = (await me.execute('mutation { createBoard(input: {name: "b"}) { ... on BoardSuccess { board { id } } } }'))[
        "data"
    ]["createBoard"]["board"]["id"]
    first = (await me.execute(GENERATE, {"m": model}))["data"]["generate"]["generation"]["id"]
    second = (await me.execute(GENERATE, {"m": model, "b": board}))["data"]["generate"]["generation"]["id"]
    await settled(client, first)
    await settled(client, second)
    first_keys, second_keys = await keys_of(client, first), await keys_of(client, second)
    assert first_keys and second_keys
    # when the first generation, then the board, then the account are deleted
    deleted = await me.execute("mutation D($id: ID!) { deleteGeneration(id: $id) { __typename } }", {"id": first})
    assert deleted["data"]["deleteGeneration"]["__typename"] == "DeleteGenerationSuccess"
    await gone(client, first_keys)
    dropped = await me.execute("mutation D($id: ID!) { deleteBoard(id: $id) { __typename } }", {"id": board})
    assert dropped["data"]["deleteBoard"]["__typename"] == "DeleteBoardSuccess"
    detached = await me.execute("query G($id: ID!) { generation(id: $id) { board { id } } }", {"id": second})
    assert detached["data"]["generation"] == {"board": None}
    left = await me.execute(
        "mutation D($p: String!) { deleteAccount(input: {password: $p}) { __typename } }", {"p": PASSWORD}
    )
    assert left["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess"
    # then its objects are deleted, the ledger still sums, and the address registers anew
    await gone(client, second_keys)
    user = uuid.UUID(auth["user"]["id"])
    async with client.container.uow() as uow:
        assert await uow.credits.balance(user) == await uow.credits.ledger_totals(user)
        assert await uow.generations.ids_of_user(user) == []
    again = await register_user(client, "embedded@example.com", PASSWORD)
    assert again["user"]["id"] != auth["user"]["id"]
