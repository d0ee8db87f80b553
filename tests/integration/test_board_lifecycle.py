"""renameBoard, deleteBoard and leaveBoard on PostgreSQL through the real app: roles, the last OWNER, races."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.integration.board_world import ADD_MEMBER, World, join, module_world, with_board

pytestmark = pytest.mark.postgres

RENAME = """
mutation Rename($boardId: ID!, $name: String!) {
  renameBoard(input: {boardId: $boardId, name: $name}) {
    __typename
    ... on BoardSuccess { board { id name myRole } }
    ... on InvalidInput { fields { field message } }
    ... on Error { code message }
  }
}
"""
DELETE_BOARD = """
mutation DeleteBoard($id: ID!) {
  deleteBoard(id: $id) { __typename ... on DeleteBoardSuccess { boardId } ... on Error { code message } }
}
"""
LEAVE = """
mutation Leave($boardId: ID!) {
  leaveBoard(boardId: $boardId) { __typename ... on LeaveBoardSuccess { boardId } ... on Error { code message } }
}
"""
BOARD = "query Board($id: ID!) { board(id: $id) { id name members { role user { email } } } }"
GENERATION = "query G($id: ID!) { generation(id: $id) { id board { id } } }"


@pytest.fixture(scope="module")
async def personas(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with module_world(postgres_dsn, tmp_path_factory.mktemp("board-life"), simulated_mode="hang") as world:
        yield world


@pytest.fixture
async def world(personas: World) -> World:
    return await with_board(personas)


async def count(world: World, sql: str, board_id: str) -> int:
    async with world.client.container.engine.connect() as conn:
        return int((await conn.execute(text(sql), {"id": uuid.UUID(board_id)})).scalar_one())


# ---------------------------------------------------------------- rename


async def test_the_owner_renames_the_board(world: World) -> None:
    body = (await world.data("owner", RENAME, {"boardId": world.board_id, "name": "  Renamed  "}))["renameBoard"]
    assert body == {"__typename": "BoardSuccess", "board": {"id": world.board_id, "name": "Renamed", "myRole": "OWNER"}}
    seen = (await world.data("viewer", BOARD, {"id": world.board_id}))["board"]
    assert seen["name"] == "Renamed"


@pytest.mark.parametrize(("persona", "kind"), [("editor", "Forbidden"), ("viewer", "Forbidden"), ("other", "NotFound")])
async def test_only_the_owner_renames(world: World, persona: str, kind: str) -> None:
    body = (await world.data(persona, RENAME, {"boardId": world.board_id, "name": "Mine now"}))["renameBoard"]
    assert body["__typename"] == kind
    assert (await world.data("owner", BOARD, {"id": world.board_id}))["board"]["name"] == "Shared"


@pytest.mark.parametrize("name", ["", "   ", "x" * 121])
async def test_a_bad_name_is_invalid_input(world: World, name: str) -> None:
    body = (await world.data("owner", RENAME, {"boardId": world.board_id, "name": name}))["renameBoard"]
    assert body["__typename"] == "InvalidInput"
    assert body["fields"][0]["field"] == "name"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=200))
async def test_hostile_names_are_stored_as_given_or_refused(personas: World, name: str) -> None:
    world = personas
    if not world.board_id:
        world.board_id = (await with_board(personas)).board_id
    body = await world.run("owner", RENAME, {"boardId": world.board_id, "name": name})
    if "errors" in body:
        assert all(e["extensions"]["code"] == "INVALID_INPUT" for e in body["errors"]), body
        return
    result = body["data"]["renameBoard"]
    assert result["__typename"] in ("BoardSuccess", "InvalidInput"), result
    if result["__typename"] == "BoardSuccess":
        assert result["board"]["name"] == name.strip()


async def test_renaming_an_unknown_or_malformed_board_is_not_found(world: World) -> None:
    for board_id in (str(uuid.uuid4()), "nope"):
        body = (await world.data("owner", RENAME, {"boardId": board_id, "name": "x"}))["renameBoard"]
        assert body["__typename"] == "NotFound"


# ---------------------------------------------------------------- delete


async def test_deleting_a_board_keeps_its_generations_detached(world: World) -> None:
    # given a board with members, a pending invitation and a generation in it
    invited = await world.data(
        "owner", ADD_MEMBER, {"boardId": world.board_id, "email": "later@example.com", "role": "VIEWER"}
    )
    assert invited["addBoardMember"]["__typename"] == "BoardSuccess"
    # when the owner deletes it
    body = (await world.data("owner", DELETE_BOARD, {"id": world.board_id}))["deleteBoard"]
    # then the board, its memberships and invitations are gone
    assert body == {"__typename": "DeleteBoardSuccess", "boardId": world.board_id}
    for table in ("boards WHERE id", "board_members WHERE board_id", "board_invitations WHERE board_id"):
        assert await count(world, f"SELECT count(*) FROM {table} = :id", world.board_id) == 0, table
    assert (await world.data("editor", BOARD, {"id": world.board_id}))["board"] is None
    # and the generation stays its starter's, in no board
    seen = (await world.data("owner", GENERATION, {"id": world.generation_id}))["generation"]
    assert seen == {"id": world.generation_id, "board": None}
    assert (await world.data("editor", GENERATION, {"id": world.generation_id}))["generation"] is None


@pytest.mark.parametrize(("persona", "kind"), [("editor", "Forbidden"), ("viewer", "Forbidden"), ("other", "NotFound")])
async def test_only_the_owner_deletes(world: World, persona: str, kind: str) -> None:
    body = (await world.data(persona, DELETE_BOARD, {"id": world.board_id}))["deleteBoard"]
    assert body["__typename"] == kind
    assert await count(world, "SELECT count(*) FROM boards WHERE id = :id", world.board_id) == 1


async def test_a_replayed_deletion_is_not_found(world: World) -> None:
    first = (await world.data("owner", DELETE_BOARD, {"id": world.board_id}))["deleteBoard"]
    again = (await world.data("owner", DELETE_BOARD, {"id": world.board_id}))["deleteBoard"]
    assert (first["__typename"], again["__typename"]) == ("DeleteBoardSuccess", "NotFound")


async def test_concurrent_deletions_one_wins(world: World) -> None:
    bodies = await asyncio.gather(*[world.data("owner", DELETE_BOARD, {"id": world.board_id}) for _ in range(6)])
    kinds = sorted(b["deleteBoard"]["__typename"] for b in bodies)
    assert kinds == ["DeleteBoardSuccess"] + ["NotFound"] * 5


async def test_a_generate_racing_a_deletion_lands_outside_or_is_refused(world: World) -> None:
    from tests.integration.board_world import GENERATE

    # when the editor starts generations in the board while the owner deletes it
    racing = [world.data("editor", GENERATE, {"modelId": world.model_id, "boardId": world.board_id}) for _ in range(5)]
    results = await asyncio.gather(world.data("owner", DELETE_BOARD, {"id": world.board_id}), *racing)
    # then the deletion won, and each start either was before it (now detached) or was refused
    assert results[0]["deleteBoard"]["__typename"] == "DeleteBoardSuccess"
    for started in results[1:]:
        kind = started["generate"]["__typename"]
        assert kind in ("GenerateSuccess", "NotFound"), started
        if kind == "GenerateSuccess":
            assert (
                started["generate"]["generation"]["board"] is None
                or started["generate"]["generation"]["board"]["id"] == world.board_id
            )
    assert await count(world, "SELECT count(*) FROM generations WHERE board_id = :id", world.board_id) == 0


# ---------------------------------------------------------------- leave


@pytest.mark.parametrize("persona", ["editor", "viewer"])
async def test_a_member_leaves(world: World, persona: str) -> None:
    body = (await world.data(persona, LEAVE, {"boardId": world.board_id}))["leaveBoard"]
    assert body == {"__typename": "LeaveBoardSuccess", "boardId": world.board_id}
    assert (await world.data(persona, BOARD, {"id": world.board_id}))["board"] is None
    again = (await world.data(persona, LEAVE, {"boardId": world.board_id}))["leaveBoard"]
    assert again["__typename"] == "NotFound"


async def test_the_last_owner_cannot_leave_but_one_of_two_can(world: World) -> None:
    body = (await world.data("owner", LEAVE, {"boardId": world.board_id}))["leaveBoard"]
    assert body["__typename"] == "InvalidState"
    # given a second OWNER
    promoted = await world.data(
        "owner", ADD_MEMBER, {"boardId": world.board_id, "email": world.emails["editor"], "role": "OWNER"}
    )
    assert promoted["addBoardMember"]["__typename"] == "BoardSuccess"
    # when both owners leave at once, exactly one of them can
    bodies = await asyncio.gather(
        world.data("owner", LEAVE, {"boardId": world.board_id}),
        world.data("editor", LEAVE, {"boardId": world.board_id}),
    )
    kinds = sorted(b["leaveBoard"]["__typename"] for b in bodies)
    assert kinds == ["InvalidState", "LeaveBoardSuccess"]
    owners = "SELECT count(*) FROM board_members WHERE board_id = :id AND role = 'owner'"
    assert await count(world, owners, world.board_id) == 1


async def test_a_non_member_cannot_leave(world: World) -> None:
    for board_id in (world.board_id, str(uuid.uuid4()), "garbage"):
        body = (await world.data("other", LEAVE, {"boardId": board_id}))["leaveBoard"]
        assert body["__typename"] == "NotFound"


async def test_an_invited_member_who_left_can_join_again(world: World) -> None:
    await world.data("viewer", LEAVE, {"boardId": world.board_id})
    rejoined = await join(world, "viewer", "VIEWER")
    assert rejoined["board"]["myRole"] == "VIEWER"
