"""PostgreSQL unreachable (a proxy in front of it is cut): typed SERVICE_UNAVAILABLE answers with a retry
hint, nothing reserved for a refused request, the catalogue from its last read, recovery by itself."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text

from infrastructure.providers.kie_wire import sign
from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)
from tests.fixtures.tcp_proxy import TcpProxy, tcp_proxy
from tests.fixtures.waiting import eventually
from tests.integration.asgi_websocket import AsgiWebSocket
from tests.outage_table import expected_answer

pytestmark = pytest.mark.postgres

GENERATE = """
mutation Generate($input: GenerateInput!) {
  generate(input: $input) { __typename ... on GenerateSuccess { generation { id status } } ... on Error { code } }
}
"""
CREDITS = "query Credits { credits { balance reserved available } }"
MODELS = "query Models { models { id slug } }"
LOGIN = """mutation Login($e: String!, $p: String!) { login(input: {email: $e, password: $p}) {
  __typename ... on AuthPayload { accessToken } } }"""
PASSWORD = "correct horse battery"


def through(url: str, port: int) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{port}"))


@pytest.fixture
async def proxy(clean_postgres: str) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(clean_postgres)
    async with tcp_proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as p:
        yield p


@pytest.fixture
async def client(clean_postgres: str, proxy: TcpProxy, make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(
        database_url=through(clean_postgres, proxy.port), simulated_mode="hang", catalogue_cache_ttl_seconds=0
    )
    async with running_app(settings) as c:
        yield c


async def post(
    client: GraphQLClient, query: str, variables: dict[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    response = await client.http.post("/graphql", json={"query": query, "variables": variables or {}})
    return response, response.json()


def assert_unavailable(response: Any, body: dict[str, Any]) -> None:
    """The typed refusal: HTTP 200 (GraphQL over HTTP), Retry-After, the code and its hint in the error."""
    assert response.status_code == 200, response.text
    [error] = body["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", error
    assert error["extensions"]["retryAfter"] >= 1
    assert response.headers["retry-after"] == str(error["extensions"]["retryAfter"])
    assert "requestId" in error["extensions"]


async def test_postgres_down_answers_typed_and_reserves_nothing(
    client: GraphQLClient, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    # given a user with credits who has started one generation
    user = await register_user(client, f"pg-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    token, user_id = user["accessToken"], user["user"]["id"]
    await operator_grant(client, user_id, 100)
    model_id = await operator_model(client, cost=10)
    me = client.as_user(token)
    body = await me.execute(GENERATE, {"input": {"modelId": model_id, "prompt": "first [hang]"}})
    assert body["data"]["generate"]["__typename"] == "GenerateSuccess"
    assert (await me.execute(MODELS))["data"]["models"]

    # when PostgreSQL cannot be reached
    await proxy.cut()
    caplog.set_level(logging.WARNING)
    me.http.headers["Authorization"] = f"Bearer {token}"
    try:
        response, body = await post(me, GENERATE, {"input": {"modelId": model_id, "prompt": "refused [hang]"}})
        # then generate is refused with the typed error and its retry hint, as the table says
        assert_unavailable(response, body)
        assert "SERVICE_UNAVAILABLE" in expected_answer("generate", "PostgreSQL")
        # and so is a read of the database
        assert_unavailable(*await post(me, CREDITS))
        assert "SERVICE_UNAVAILABLE" in expected_answer("queries", "PostgreSQL")
        # and a login (the account is in the database)
        del me.http.headers["Authorization"]
        assert_unavailable(*await post(me, LOGIN, {"e": user["user"]["email"], "p": PASSWORD}))
        me.http.headers["Authorization"] = f"Bearer {token}"
        # while the catalogue answers from its last read
        response, body = await post(me, MODELS)
        assert "errors" not in body, body
        assert [m["id"] for m in body["data"]["models"]] == [model_id]
        assert "last read" in expected_answer("catalogue", "PostgreSQL")
    finally:
        del me.http.headers["Authorization"]
        await proxy.restore()
    # and no refusal was logged as an unexpected error
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]

    # when it is back, the same request succeeds by itself
    async def generates() -> bool:
        body = await me.execute(
            GENERATE, {"input": {"modelId": model_id, "prompt": "after [hang]"}}, expect_errors=True
        )
        return "errors" not in body and body["data"]["generate"]["__typename"] == "GenerateSuccess"

    await eventually(generates, what="generate to succeed after PostgreSQL is back", timeout=10, every=0.1)
    # then the ledger is exact: two generations, two reservations, nothing for the refused one
    async with client.container.uow() as uow:
        account = await uow.credits.balance(uuid.UUID(user_id))
        totals = await uow.credits.ledger_totals(uuid.UUID(user_id))
        ledger = await uow.session.execute(
            text("SELECT kind, count(*) FROM credit_ledger WHERE user_id = :u GROUP BY kind"),
            {"u": uuid.UUID(user_id)},
        )
        kinds = dict(ledger.all())
        prompts = await uow.session.execute(
            text("SELECT prompt FROM generations WHERE user_id = :u ORDER BY created_at"),
            {"u": uuid.UUID(user_id)},
        )
    assert account == totals
    assert (account.balance, account.reserved) == (100, 20)
    assert kinds == {"grant": 1, "reserve": 2}
    assert [p for (p,) in prompts.all()] == ["first [hang]", "after [hang]"]


WATCH = "subscription Watch($id: ID!) { generationUpdated(id: $id) { generation { id status } } }"


async def test_postgres_down_a_subscription_start_gets_a_typed_error_and_the_socket_stays(
    client: GraphQLClient, proxy: TcpProxy
) -> None:
    # given a signed-in user with a generation, on an open socket
    user = await register_user(client, f"ws-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    await operator_grant(client, user["user"]["id"], 100)
    model_id = await operator_model(client, cost=10)
    me = client.as_user(user["accessToken"])
    body = await me.execute(GENERATE, {"input": {"modelId": model_id, "prompt": "watched [hang]"}})
    generation_id = body["data"]["generate"]["generation"]["id"]
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {user['accessToken']}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        # when PostgreSQL is down and the subscription's start must read the generation
        await proxy.cut()
        try:
            await ws.send_json(
                {"id": "1", "type": "subscribe", "payload": {"query": WATCH, "variables": {"id": generation_id}}}
            )
            message = await ws.receive_json()
            # then the operation ends with its error, the code and its retry hint, as the table says
            assert message["type"] == "next" and message["id"] == "1", message
            assert message["payload"]["data"] is None
            [error] = message["payload"]["errors"]
            assert await ws.receive_json() == {"id": "1", "type": "complete"}
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert error["extensions"]["retryAfter"] >= 1
            assert "SERVICE_UNAVAILABLE" in expected_answer("subscriptions", "PostgreSQL")
        finally:
            await proxy.restore()
        # and the socket stays open: a subscription started after recovery delivers
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json())["type"] == "pong"


CALLBACK_SECRET = "outage-callback-secret"


async def test_postgres_down_a_provider_callback_is_a_503_with_retry_after(
    clean_postgres: str, proxy: TcpProxy, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # given a genuine KIE callback (signed with our secret) for a task no generation holds
    settings = make_settings(database_url=through(clean_postgres, proxy.port), kie_callback_secret=CALLBACK_SECRET)
    stamp = str(int(time.time()))
    body = json.dumps({"code": 200, "data": {"taskId": "task_outage", "state": "success"}}).encode()
    headers = {
        "X-Webhook-Signature": sign(CALLBACK_SECRET, "task_outage", stamp),
        "X-Webhook-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    async with running_app(settings) as client:
        # while PostgreSQL answers, an unknown task is a 404
        response = await client.http.post("/providers/kie/callback", content=body, headers=headers)
        assert response.status_code == 404, response.text
        # when PostgreSQL cannot be reached during the task lookup
        await proxy.cut()
        caplog.set_level(logging.WARNING)
        try:
            response = await client.http.post("/providers/kie/callback", content=body, headers=headers)
        finally:
            await proxy.restore()
    # then the provider is told to deliver it again later (503 with Retry-After), not a 500 or a 404
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]
