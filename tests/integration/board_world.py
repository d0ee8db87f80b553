"""A small world for board and authorization tests: six personas, a model, a board and a generation.

Personas: anonymous, other (no relation to the board), viewer, editor, owner (all board
members as named) and admin (role ADMIN, not a board member).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from domain.use_cases import auth
from infrastructure.settings import Settings
from tests.fixtures.app import GraphQLClient, operator_grant, operator_model, register_user, running_app
from tests.fixtures.services import asyncpg_to_sqlalchemy, empty_tables

PASSWORD = "correct horse battery"
MEMBER_ROLES = {"owner": "OWNER", "editor": "EDITOR", "viewer": "VIEWER"}

CREATE_BOARD = """
mutation CreateBoard($name: String!) {
  createBoard(input: {name: $name}) {
    __typename
    ... on BoardSuccess { board { id name myRole members { role user { id email } } } }
    ... on Error { code message }
    ... on InvalidInput { fields { field message } }
  }
}
"""
ADD_MEMBER = """
mutation AddMember($boardId: ID!, $email: String!, $role: BoardRole!) {
  addBoardMember(input: {boardId: $boardId, email: $email, role: $role}) {
    __typename
    ... on BoardSuccess { board { id myRole members { role user { email } } } }
    ... on Error { code message }
    ... on InvalidInput { fields { field message } }
  }
}
"""
ACCEPT_INVITATION = """
mutation AcceptInvitation($boardId: ID!) {
  acceptBoardInvitation(boardId: $boardId) {
    __typename
    ... on BoardSuccess { board { id myRole members { role user { email } } } }
    ... on Error { code message }
  }
}
"""
REMOVE_MEMBER = """
mutation RemoveMember($boardId: ID!, $userId: ID!) {
  removeBoardMember(input: {boardId: $boardId, userId: $userId}) {
    __typename
    ... on BoardSuccess { board { id myRole members { role user { email } } } }
    ... on Error { code message }
  }
}
"""
GENERATE = """
mutation Generate($modelId: ID!, $boardId: ID) {
  generate(input: {modelId: $modelId, prompt: "a lighthouse at dawn", boardId: $boardId}) {
    __typename
    ... on GenerateSuccess { generation { id status board { id } } }
    ... on Error { code message }
  }
}
"""
CREDITS = "query Credits { credits { balance reserved available } }"


@dataclass
class World:
    client: GraphQLClient
    tokens: dict[str, str | None] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    model_id: str = ""
    preset_id: str = ""
    board_id: str = ""
    generation_id: str = ""

    async def run(self, persona: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Execute as a persona; GraphQL errors are returned, not asserted away."""
        return await self.client.execute(query, variables, token=self.tokens[persona] or "", expect_errors=True)

    async def data(self, persona: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.run(persona, query, variables)
        assert "errors" not in body, body["errors"]
        result: dict[str, Any] = body["data"]
        return result


async def add_model(client: GraphQLClient, *, slug: str = "sim-image", cost: int = 10) -> str:
    return await operator_model(client, slug=slug, cost=cost)


grant = operator_grant


async def sign_in(client: GraphQLClient, email: str) -> str:
    body = await client.execute(
        "mutation L($e: String!, $p: String!) { login(input: {email: $e, password: $p}) "
        "{ ... on AuthPayload { accessToken } ... on Error { code } } }",
        {"e": email, "p": PASSWORD},
    )
    token: str = body["data"]["login"]["accessToken"]
    return token


def world_settings(postgres_dsn: str, tmp: Path, **overrides: Any) -> Settings:
    """Like the `make_settings` fixture, for module-scoped worlds; auth and invitation throttles out of the way."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": asyncpg_to_sqlalchemy(postgres_dsn),
        "data_dir": tmp / "data",
        "local_storage_path": tmp / "chunks",
        "simulated_step_seconds": 0.05,
        "simulated_steps": 2,
        "poll_interval_seconds": 0.2,
        "seed_demo": False,
        "rate_limit_register": 10_000,
        "rate_limit_login": 10_000,
        "rate_limit_password_reset": 10_000,
        "rate_limit_password_reset_account": 10_000,
        "rate_limit_invite": 10_000,  # every board of these tests is shared by invitation
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def module_world(postgres_dsn: str, tmp: Path, **overrides: Any) -> AsyncIterator[World]:
    """Empty tables, start the app, sign the personas in: once per test module (argon2 is slow on purpose)."""
    await empty_tables(postgres_dsn)
    async with running_app(world_settings(postgres_dsn, tmp, **overrides)) as client:
        yield await build_personas(client)


async def build_personas(client: GraphQLClient, *, credits_each: int = 100_000) -> World:
    """Personas signed in, credits granted, a model; no board yet (see `with_board`)."""
    world = World(client, tokens={"anonymous": None})
    for persona in ("owner", "editor", "viewer", "other", "admin"):
        email = f"{persona}@example.com"
        session = await register_user(client, email, PASSWORD)
        world.tokens[persona] = session["accessToken"]
        world.user_ids[persona] = session["user"]["id"]
        world.emails[persona] = email
    c = client.container
    await auth.ensure_admin(email=world.emails["admin"], password=PASSWORD, uow=c.uow(), hasher=c.hasher, clock=c.clock)
    world.tokens["admin"] = await sign_in(client, world.emails["admin"])  # the role lives in the token
    world.model_id = await add_model(client)
    for persona in ("owner", "editor", "viewer", "other", "admin"):
        await grant(client, world.user_ids[persona], credits_each)
    return world


async def join(world: World, persona: str, role: str, *, inviter: str = "owner") -> dict[str, Any]:
    """Membership the way users get it: `inviter` invites the persona's e-mail, the persona accepts."""
    invited = await world.data(
        inviter, ADD_MEMBER, {"boardId": world.board_id, "email": world.emails[persona], "role": role}
    )
    assert invited["addBoardMember"]["__typename"] == "BoardSuccess", invited
    accepted: dict[str, Any] = (await world.data(persona, ACCEPT_INVITATION, {"boardId": world.board_id}))[
        "acceptBoardInvitation"
    ]
    assert accepted["__typename"] == "BoardSuccess", accepted
    return accepted


async def with_board(world: World, name: str = "Shared") -> World:
    """A fresh board (owner, editor, viewer) with one generation the owner started in it."""
    world = replace(world)
    created = (await world.data("owner", CREATE_BOARD, {"name": name}))["createBoard"]
    assert created["__typename"] == "BoardSuccess", created
    world.board_id = created["board"]["id"]
    for persona in ("editor", "viewer"):
        await join(world, persona, MEMBER_ROLES[persona])
    started = (await world.data("owner", GENERATE, {"modelId": world.model_id, "boardId": world.board_id}))["generate"]
    assert started["__typename"] == "GenerateSuccess", started
    world.generation_id = started["generation"]["id"]
    return world
