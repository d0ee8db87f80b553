"""Boards on PostgreSQL through the real ASGI app: sharing, roles, member management, races."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from domain.errors import Forbidden, NotFound
from domain.use_cases.generations import GenerateRequest, generate
from domain.users import Principal, Role
from tests.fixtures.app import register_user
from tests.integration.board_world import (
    ACCEPT_INVITATION,
    ADD_MEMBER,
    CREATE_BOARD,
    CREDITS,
    GENERATE,
    PASSWORD,
    REMOVE_MEMBER,
    World,
    module_world,
    with_board,
)

pytestmark = pytest.mark.postgres

BOARD = """
query Board($id: ID!) {
  board(id: $id) {
    id name myRole
    members { role user { email } }
    generations(first: 10) { edges { node { id board { id } } } pageInfo { hasNextPage } }
  }
}
"""
BOARDS = "query Boards { boards { id name myRole } }"
GENERATION = "query Generation($id: ID!) { generation(id: $id) { id board { id name } } }"
GENERATIONS_OF_BOARD = """
query Generations($boardId: ID!) { generations(first: 20, filter: {boardId: $boardId}) { edges { node { id } } } }
"""


@pytest.fixture(scope="module")
async def personas(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    # The simulated provider hangs: no generation settles (and moves credits) while a test compares balances.
    async with module_world(postgres_dsn, tmp_path_factory.mktemp("boards"), simulated_mode="hang") as world:
        yield world


@pytest.fixture
async def world(personas: World) -> World:
    """Every test gets a board of its own, so tests stay independent on one app."""
    return await with_board(personas)


def members_of(board: dict[str, object]) -> dict[str, str]:
    return {m["user"]["email"]: m["role"] for m in board["members"]}  # type: ignore[attr-defined,index]


# ---------------------------------------------------------------- sharing


async def test_creator_is_owner_and_sees_every_role(world: World) -> None:
    # when the owner reads the board
    board = (await world.data("owner", BOARD, {"id": world.board_id}))["board"]
    # then the roles are as granted
    assert board["myRole"] == "OWNER"
    assert members_of(board) == {
        "owner@example.com": "OWNER",
        "editor@example.com": "EDITOR",
        "viewer@example.com": "VIEWER",
    }


async def test_viewer_reads_the_boards_generations(world: World) -> None:
    # given a generation the owner started in the board
    # when the viewer reads the board, its generations and the generation itself
    board = (await world.data("viewer", BOARD, {"id": world.board_id}))["board"]
    single = (await world.data("viewer", GENERATION, {"id": world.generation_id}))["generation"]
    listed = (await world.data("viewer", GENERATIONS_OF_BOARD, {"boardId": world.board_id}))["generations"]
    boards = (await world.data("viewer", BOARDS))["boards"]
    # then the viewer sees all of it, with its own role
    assert board["myRole"] == "VIEWER"
    assert [e["node"]["id"] for e in board["generations"]["edges"]] == [world.generation_id]
    assert single == {"id": world.generation_id, "board": {"id": world.board_id, "name": "Shared"}}
    assert [e["node"]["id"] for e in listed["edges"]] == [world.generation_id]
    assert {"id": world.board_id, "name": "Shared", "myRole": "VIEWER"} in boards


NESTED_BOARD_PAGES = """
query Nested($boardId: ID!) { generations(first: 100, filter: {boardId: $boardId}) { edges { node {
  id board { id generations(first: 2) { edges { node { id } } pageInfo { hasNextPage } } }
} } } }
"""


async def test_a_boards_page_under_every_item_of_a_list_is_read_once(world: World) -> None:
    from sqlalchemy import event

    # given a board holding 12 generations
    for _ in range(11):
        started = await world.data("editor", GENERATE, {"modelId": world.model_id, "boardId": world.board_id})
        assert started["generate"]["__typename"] == "GenerateSuccess"
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    engine = world.client.container.engine.sync_engine
    # when a member lists them and asks, under each, for the board's first page, on the
    # resolvers (on PostgreSQL the compiled path answers it in one statement of its own)
    app = world.client.app
    services = app.state.services
    app.state.services = dataclasses.replace(services, json_reads=None)
    event.listen(engine, "before_cursor_execute", count)
    try:
        data = await world.data("viewer", NESTED_BOARD_PAGES, {"boardId": world.board_id})
    finally:
        event.remove(engine, "before_cursor_execute", count)
        app.state.services = services
    # then every item shows the same page, which was read once (not once per item)
    edges = data["generations"]["edges"]
    assert len(edges) == 12
    pages = {str(e["node"]["board"]["generations"]) for e in edges}
    assert len(pages) == 1 and edges[0]["node"]["board"]["generations"]["pageInfo"]["hasNextPage"] is True
    # (the app's embedded poll sweep reads generations too, never by board)
    page_reads = [s for s in statements if "FROM generations" in s and "generations.board_id = " in s]
    assert len(page_reads) == 2, page_reads  # the list itself and the nested page


async def test_outsider_sees_nothing_of_the_board(world: World) -> None:
    # when a user outside the board asks for it and its generation
    board = (await world.data("other", BOARD, {"id": world.board_id}))["board"]
    single = (await world.data("other", GENERATION, {"id": world.generation_id}))["generation"]
    listed = (await world.data("other", GENERATIONS_OF_BOARD, {"boardId": world.board_id}))["generations"]
    boards = (await world.data("other", BOARDS))["boards"]
    # then it is as if they did not exist
    assert board is None
    assert single is None
    assert listed["edges"] == []
    assert world.board_id not in [b["id"] for b in boards]


async def test_editor_generates_into_the_board_and_is_charged(world: World) -> None:
    # given the credits of editor and owner before
    editor_before = (await world.data("editor", CREDITS))["credits"]
    owner_before = (await world.data("owner", CREDITS))["credits"]
    # when the editor starts a generation in the board
    result = (await world.data("editor", GENERATE, {"modelId": world.model_id, "boardId": world.board_id}))["generate"]
    # then it is in the board, the owner sees it, and only the editor paid
    assert result["__typename"] == "GenerateSuccess", result
    generation_id = result["generation"]["id"]
    assert result["generation"]["board"] == {"id": world.board_id}
    editor_after = (await world.data("editor", CREDITS))["credits"]
    owner_after = (await world.data("owner", CREDITS))["credits"]
    assert editor_after["available"] == editor_before["available"] - 10
    assert owner_after == owner_before
    seen_by_owner = (await world.data("owner", BOARD, {"id": world.board_id}))["board"]
    assert generation_id in [e["node"]["id"] for e in seen_by_owner["generations"]["edges"]]


@pytest.mark.parametrize(("persona", "expected"), [("viewer", "Forbidden"), ("other", "NotFound")])
async def test_viewer_and_outsider_cannot_generate_into_the_board(world: World, persona: str, expected: str) -> None:
    before = (await world.data(persona, CREDITS))["credits"]
    result = (await world.data(persona, GENERATE, {"modelId": world.model_id, "boardId": world.board_id}))["generate"]
    assert result["__typename"] == expected
    assert (await world.data(persona, CREDITS))["credits"] == before


# ---------------------------------------------------------------- member management


class ChangedJustBefore:
    """A GenerationStarter that lets the owner change the board right before the real start runs."""

    def __init__(self, inner: Any, change: Callable[[], Awaitable[object]]) -> None:
        self.inner, self.change = inner, change

    async def start(self, generation: Any, reservation: Any) -> Any:
        await self.change()
        return await self.inner.start(generation, reservation)


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"query": REMOVE_MEMBER, "userId": "editor"}, NotFound),
        ({"query": ADD_MEMBER, "email": "editor@example.com", "role": "VIEWER"}, Forbidden),
    ],
)
async def test_a_member_removed_or_demoted_during_a_start_starts_nothing(
    world: World, change: dict[str, str], refusal: type[Exception]
) -> None:
    # given an editor whose generate has passed the board check, and an owner who removes or
    # demotes them before the start itself runs
    variables = {"boardId": world.board_id, **{k: v for k, v in change.items() if k != "query"}}
    if "userId" in variables:
        variables["userId"] = world.user_ids[variables["userId"]]

    async def owner_changes_the_board() -> object:
        return await world.data("owner", change["query"], variables)

    c = world.client.container
    before = (await world.data("editor", CREDITS))["credits"]
    request = GenerateRequest(
        model_id=uuid.UUID(world.model_id), prompt="a harbour", board_id=uuid.UUID(world.board_id)
    )
    # when the start runs
    with pytest.raises(refusal):
        await generate(
            principal=Principal(uuid.UUID(world.user_ids["editor"]), Role.USER),
            request=request,
            uow=c.uow(),
            starter=ChangedJustBefore(c.starter, owner_changes_the_board),
            catalogue=c.catalogue,
            jobs=c.jobs,
            publisher=c.publisher,
            clock=c.clock,
        )
    # then the typed refusal names the new state, and nothing was written or held
    assert (await world.data("editor", CREDITS))["credits"] == before
    listed = await world.data("owner", GENERATIONS_OF_BOARD, {"boardId": world.board_id})
    assert [e["node"]["id"] for e in listed["generations"]["edges"]] == [world.generation_id]


async def test_owner_changes_a_role_and_removes_a_member(world: World) -> None:
    # when the owner promotes the viewer to editor
    promoted = (
        await world.data(
            "owner", ADD_MEMBER, {"boardId": world.board_id, "email": "VIEWER@example.com", "role": "EDITOR"}
        )
    )["addBoardMember"]
    # then the role changed and the owner's own role is reported
    assert promoted["__typename"] == "BoardSuccess"
    assert promoted["board"]["myRole"] == "OWNER"
    assert members_of(promoted["board"])["viewer@example.com"] == "EDITOR"
    # when the owner removes the editor
    removed = (
        await world.data("owner", REMOVE_MEMBER, {"boardId": world.board_id, "userId": world.user_ids["editor"]})
    )["removeBoardMember"]
    # then the editor no longer sees the board
    assert removed["__typename"] == "BoardSuccess"
    assert "editor@example.com" not in members_of(removed["board"])
    assert (await world.data("editor", BOARD, {"id": world.board_id}))["board"] is None


async def test_a_member_may_leave(world: World) -> None:
    left = (await world.data("viewer", REMOVE_MEMBER, {"boardId": world.board_id, "userId": world.user_ids["viewer"]}))[
        "removeBoardMember"
    ]
    assert left["__typename"] == "BoardSuccess"
    assert left["board"]["myRole"] == "VIEWER"  # the role it had before leaving
    assert world.board_id not in [b["id"] for b in (await world.data("viewer", BOARDS))["boards"]]
    assert (await world.data("viewer", GENERATION, {"id": world.generation_id}))["generation"] is None


async def test_last_owner_cannot_be_removed_or_demoted(world: World) -> None:
    # when the only owner tries to leave, or to make themself an editor
    leave = (await world.data("owner", REMOVE_MEMBER, {"boardId": world.board_id, "userId": world.user_ids["owner"]}))[
        "removeBoardMember"
    ]
    demote = (
        await world.data(
            "owner", ADD_MEMBER, {"boardId": world.board_id, "email": world.emails["owner"], "role": "EDITOR"}
        )
    )["addBoardMember"]
    # then both are refused and the board is unchanged
    assert leave["__typename"] == "InvalidState"
    assert demote["__typename"] == "InvalidInput"
    assert [f["field"] for f in demote["fields"]] == ["role"]
    board = (await world.data("owner", BOARD, {"id": world.board_id}))["board"]
    assert members_of(board)["owner@example.com"] == "OWNER"


async def test_with_a_second_owner_the_first_may_leave(world: World) -> None:
    await world.data("owner", ADD_MEMBER, {"boardId": world.board_id, "email": world.emails["editor"], "role": "OWNER"})
    left = (await world.data("owner", REMOVE_MEMBER, {"boardId": world.board_id, "userId": world.user_ids["owner"]}))[
        "removeBoardMember"
    ]
    assert left["__typename"] == "BoardSuccess"
    board = (await world.data("editor", BOARD, {"id": world.board_id}))["board"]
    assert members_of(board) == {"editor@example.com": "OWNER", "viewer@example.com": "VIEWER"}


async def test_an_address_without_a_member_gets_an_invitation_not_a_membership(world: World) -> None:
    # given an account outside the board (a new one: the shared personas stay outside every other board)
    guest = await register_user(world.client, f"guest-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    email = guest["user"]["email"]
    # when the owner adds its address, and an address nobody uses
    for address in (email, "nobody@example.com"):
        added = (
            await world.data("owner", ADD_MEMBER, {"boardId": world.board_id, "email": address, "role": "EDITOR"})
        )["addBoardMember"]
        # then the answer is the board as it was: an invitation is not a membership
        assert added["__typename"] == "BoardSuccess", added
        assert address not in members_of(added["board"])
    # and the account's owner becomes a member only by accepting
    as_guest = {"token": guest["accessToken"]}
    assert (await world.client.execute(BOARD, {"id": world.board_id}, **as_guest))["data"]["board"] is None
    accepted = (await world.client.execute(ACCEPT_INVITATION, {"boardId": world.board_id}, **as_guest))["data"][
        "acceptBoardInvitation"
    ]
    assert accepted["__typename"] == "BoardSuccess"
    assert accepted["board"]["myRole"] == "EDITOR"
    assert members_of(accepted["board"])[email] == "EDITOR"


# ---------------------------------------------------------------- unhappy paths

MISSING = str(uuid.UUID(int=0xDEAD, version=4))  # fixed: xdist needs the same test ids in every process


@pytest.mark.parametrize(
    ("persona", "variables", "expected"),
    [
        ("editor", {"email": "other@example.com", "role": "VIEWER"}, "Forbidden"),
        ("viewer", {"email": "other@example.com", "role": "VIEWER"}, "Forbidden"),
        ("other", {"email": "other@example.com", "role": "OWNER"}, "NotFound"),
        ("admin", {"email": "admin@example.com", "role": "OWNER"}, "NotFound"),
        ("owner", {"email": "not an e-mail", "role": "VIEWER"}, "InvalidInput"),
        ("owner", {"email": "", "role": "VIEWER"}, "InvalidInput"),
        ("owner", {"boardId": MISSING, "email": "other@example.com", "role": "VIEWER"}, "NotFound"),
        ("owner", {"boardId": "not-a-uuid", "email": "other@example.com", "role": "VIEWER"}, "InvalidInput"),
    ],
)
async def test_add_member_unhappy_paths(world: World, persona: str, variables: dict[str, str], expected: str) -> None:
    before = (await world.data("owner", BOARD, {"id": world.board_id}))["board"]
    result = (await world.data(persona, ADD_MEMBER, {"boardId": world.board_id, **variables}))["addBoardMember"]
    assert result["__typename"] == expected, result
    assert result["code"]
    after = (await world.data("owner", BOARD, {"id": world.board_id}))["board"]
    assert members_of(after) == members_of(before)


@pytest.mark.parametrize(
    ("persona", "target", "board", "expected"),
    [
        ("editor", "viewer", None, "Forbidden"),
        ("viewer", "owner", None, "Forbidden"),
        ("other", "viewer", None, "NotFound"),
        ("admin", "viewer", None, "NotFound"),
        ("owner", "other", None, "NotFound"),
        ("owner", "viewer", MISSING, "NotFound"),
        ("owner", "viewer", "not-a-uuid", "NotFound"),
        ("owner", "not-a-uuid", None, "NotFound"),
    ],
)
async def test_remove_member_unhappy_paths(
    world: World, persona: str, target: str, board: str | None, expected: str
) -> None:
    before = (await world.data("owner", BOARD, {"id": world.board_id}))["board"]
    user_id = world.user_ids.get(target, target)
    result = (await world.data(persona, REMOVE_MEMBER, {"boardId": board or world.board_id, "userId": user_id}))[
        "removeBoardMember"
    ]
    assert result["__typename"] == expected, result
    after = (await world.data("owner", BOARD, {"id": world.board_id}))["board"]
    assert members_of(after) == members_of(before)


@pytest.mark.parametrize("name", ["", "   ", "x" * 121, "a\x00b"])
async def test_create_board_rejects_bad_names(world: World, name: str) -> None:
    result = (await world.data("other", CREATE_BOARD, {"name": name}))["createBoard"]
    assert result["__typename"] == "InvalidInput"
    assert [f["field"] for f in result["fields"]] == ["name"]
    assert [b["name"] for b in (await world.data("other", BOARDS))["boards"]] == []


async def test_board_mutations_need_a_signed_in_user(world: World) -> None:
    for query, variables in (
        (CREATE_BOARD, {"name": "x"}),
        (ADD_MEMBER, {"boardId": world.board_id, "email": "other@example.com", "role": "OWNER"}),
        (REMOVE_MEMBER, {"boardId": world.board_id, "userId": world.user_ids["owner"]}),
    ):
        body = await world.run("anonymous", query, variables)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# ---------------------------------------------------------------- races (PostgreSQL row locks)


async def test_concurrent_removal_of_the_two_last_owners_lets_exactly_one_win(world: World) -> None:
    client = world.client
    for round_ in range(5):
        # given a fresh board with exactly two owners, A and B
        a = await register_user(client, f"a{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
        b = await register_user(client, f"b{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
        created = (await client.execute(CREATE_BOARD, {"name": f"race {round_}"}, token=a["accessToken"]))["data"][
            "createBoard"
        ]
        board_id = created["board"]["id"]
        await client.execute(
            ADD_MEMBER, {"boardId": board_id, "email": b["user"]["email"], "role": "OWNER"}, token=a["accessToken"]
        )
        await client.execute(ACCEPT_INVITATION, {"boardId": board_id}, token=b["accessToken"])
        # when A removes B while B removes A (and, on odd rounds, both leave at once)
        if round_ % 2 == 0:
            calls = [(a, b["user"]["id"]), (b, a["user"]["id"])]
        else:
            calls = [(a, a["user"]["id"]), (b, b["user"]["id"])]
        results = await asyncio.gather(
            *[
                client.execute(REMOVE_MEMBER, {"boardId": board_id, "userId": target}, token=actor["accessToken"])
                for actor, target in calls
            ]
        )
        kinds = sorted(r["data"]["removeBoardMember"]["__typename"] for r in results)
        # then exactly one succeeds and one OWNER remains
        assert kinds.count("BoardSuccess") == 1, kinds
        assert kinds[1] in ("InvalidState", "NotFound"), kinds
        owners = 0
        for actor in (a, b):
            board = (await client.execute(BOARD, {"id": board_id}, token=actor["accessToken"]))["data"]["board"]
            if board is not None:
                owners = sum(1 for role in members_of(board).values() if role == "OWNER")
        assert owners == 1
