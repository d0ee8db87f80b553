"""A mutation sent over SSE runs to its end when its client leaves at once, as over a plain POST.

The request goes straight into the ASGI app: its body, then `http.disconnect` for every later
`receive`, so the stream sees the client gone while the mutation's resolver is still at work.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from domain.pagination import PageRequest
from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    call_asgi,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)

pytestmark = pytest.mark.postgres

GENERATE = """
mutation Generate($input: GenerateInput!) {
  generate(input: $input) { __typename ... on GenerateSuccess { generation { id } } }
}
"""
CREATE_BOARD = "mutation Create($name: String!) { createBoard(input: {name: $name}) { __typename } }"


@pytest.fixture
async def client(clean_postgres: str, make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(database_url=clean_postgres, simulated_mode="hang")
    async with running_app(settings) as c:
        yield c


async def sent_and_left(client: GraphQLClient, token: str, query: str, variables: dict[str, Any]) -> bytes:
    """POSTs the operation asking for an event stream, then disconnects; what the server wrote."""
    headers = [
        (b"content-type", b"application/json"),
        (b"accept", b"text/event-stream"),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    body = json.dumps({"query": query, "variables": variables}).encode()
    status, _, written = await call_asgi(client.app, method="POST", path="/graphql", headers=headers, body=body)
    assert status == 200
    return written


async def count(client: GraphQLClient, sql: str, **params: Any) -> int:
    async with client.container.uow() as uow:
        return int((await uow.session.execute(text(sql), params)).scalar_one())


async def test_a_generate_whose_client_left_at_once_reserves_exactly_once(client: GraphQLClient) -> None:
    # given a user with credits for a few generations
    model_id = await operator_model(client, cost=10)
    user = await register_user(client, "sse-leaver@example.com")
    user_id = uuid.UUID(user["user"]["id"])
    await operator_grant(client, user["user"]["id"], 100)
    variables = {"input": {"modelId": model_id, "prompt": "a quiet harbour [hang]", "idempotencyKey": "left"}}
    # when it sends generate over SSE and disconnects right after sending
    written = await sent_and_left(client, user["accessToken"], GENERATE, variables)
    # then nothing reached the client but the mutation ran to its end: one generation, one reservation
    assert b"event: next" not in written
    assert await count(client, "SELECT count(*) FROM generations WHERE user_id = :u", u=user_id) == 1
    async with client.container.uow() as uow:
        account = await uow.credits.balance(user_id)
        totals = await uow.credits.ledger_totals(user_id)
        entries = await uow.credits.ledger_page(user_id, PageRequest(100))
    assert [e.kind.value for e in entries.items].count("reserve") == 1
    assert account == totals and account.reserved == 10 and account.available == 90
    # and the client's retry of the same key finds that generation instead of starting another
    retried = await client.as_user(user["accessToken"]).execute(GENERATE, variables)
    started = retried["data"]["generate"]
    assert started["__typename"] == "GenerateSuccess"
    assert await count(client, "SELECT count(*) FROM generations WHERE user_id = :u", u=user_id) == 1
    async with client.container.uow() as uow:
        assert await uow.credits.balance(user_id) == account == await uow.credits.ledger_totals(user_id)


async def test_a_create_board_whose_client_left_at_once_creates_one_board(client: GraphQLClient) -> None:
    # given a signed-in user
    user = await register_user(client, "sse-board@example.com")
    # when createBoard goes over SSE and the client disconnects right after sending
    await sent_and_left(client, user["accessToken"], CREATE_BOARD, {"name": "left behind"})
    # then the board exists, once
    assert await count(client, "SELECT count(*) FROM boards WHERE name = :n", n="left behind") == 1
