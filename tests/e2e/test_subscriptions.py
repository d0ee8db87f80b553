"""Subscriptions over real sockets: two `genhub serve` replicas, a `genhub worker`, a scheduler.

The processes share the test PostgreSQL and Redis (DB 13). Clients speak
graphql-transport-ws and legacy graphql-ws with `websockets`. Before the test publishes
anything itself it waits until Redis shows the server's SUBSCRIBE (PUBSUB NUMSUB).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.users import Role
from infrastructure.security.tokens import TokenService
from tests.e2e.subscription_support import (
    JWT_SECRET,
    Account,
    Api,
    LegacyWs,
    Proc,
    Recorder,
    Refused,
    Server,
    TransportWs,
    app_container,
    base_env,
    empty_stores,
    running_stack,
    seed_catalogue,
    seed_settings,
    wait_for_numsub,
)
from tests.fixtures.credits import grant_credits
from tests.fixtures.services import TABLES
from tests.fixtures.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

MY_EVENTS = """subscription MyEvents {
  myGenerationEvents {
    previousStatus at
    generation { id status progress chargedCredits error { code } outputs { kind contentType size url } }
  }
}"""
UPDATED = """subscription Updated($id: ID!) {
  generationUpdated(id: $id) {
    previousStatus at
    generation { id status progress error { code message } outputs { contentType size } model { slug } }
  }
}"""
CREDITS = "subscription Credits { creditsChanged { balance reserved available } }"
CREATE_BOARD = """mutation ($name: String!) { createBoard(input: {name: $name}) {
  __typename ... on BoardSuccess { board { id } } } }"""
ADD_MEMBER = """mutation ($board: ID!, $email: String!) {
  addBoardMember(input: {boardId: $board, email: $email, role: VIEWER}) { __typename } }"""
ACCEPT = """mutation ($board: ID!) { acceptBoardInvitation(boardId: $board) { __typename } }"""
TYPENAME = "query Ping { __typename }"


@dataclass
class Stack:
    a: Server
    b: Server
    worker: Proc
    scheduler: Proc
    redis_url: str
    container: Any
    api_a: Api
    api_b: Api
    model_id: str = ""

    async def user(self, credits: int = 0) -> Account:
        account = await self.api_a.register()
        if credits:
            await grant_credits(self.container, account.user_id, credits)
        return account


@pytest.fixture(scope="module")
async def stack(postgres_dsn: str, postgres_url: str, redis_url: str, tmp_path_factory: Any) -> AsyncIterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("subscriptions")
    await empty_stores(postgres_dsn, redis_url, TABLES)
    settings = seed_settings(postgres_url, redis_url, tmp)
    await seed_catalogue(settings)
    env = base_env(
        DATABASE_URL=postgres_url,
        REDIS_URL=redis_url,
        LOCAL_STORAGE_PATH=str(tmp / "chunks"),
        DATA_DIR=str(tmp / "data"),
        SIMULATED_STEPS="4",
        SIMULATED_STEP_SECONDS="0.75",
        POLL_INTERVAL_SECONDS="1",
        WS_KEEPALIVE_SECONDS="0.5",
    )
    async with (
        running_stack(env, tmp, ("serve-a", "serve-b")) as (servers, worker, scheduler),
        app_container(settings) as container,
    ):
        stack = Stack(
            servers[0],
            servers[1],
            worker,
            scheduler,
            redis_url,
            container,
            Api(servers[0].http_url),
            Api(servers[1].http_url),
        )
        probe = await stack.user()
        stack.model_id = await stack.api_a.model_id(probe.token)
        yield stack
        await stack.api_a.aclose()
        await stack.api_b.aclose()


async def connect(server: Server, account: Account) -> TransportWs:
    return await TransportWs.connect(server.ws_url, {"Authorization": f"Bearer {account.token}"})


def statuses(items: list[dict[str, Any]], field: str) -> list[str]:
    """The distinct consecutive statuses of a recorded stream."""
    seen: list[str] = []
    for payload in items:
        status = payload["data"][field]["generation"]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
    return seen


def drain(queue: asyncio.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def tokens_with_ttl(seconds: int) -> TokenService:
    return TokenService(
        algorithm="HS256",
        signing_key=JWT_SECRET,
        verifying_key=JWT_SECRET,
        issuer="genhub",
        access_ttl=seconds,
        refresh_ttl=60,
    )


# ---------------------------------------------------------------- lifecycle


async def test_a_simulated_generation_is_observed_event_by_event(stack: Stack) -> None:
    # given a user with credits, subscribed to their generations and credits before starting one
    user = await stack.user(credits=100)
    ws = await connect(stack.a, user)
    mine = Recorder(ws, await ws.subscribe(MY_EVENTS))
    money = Recorder(ws, await ws.subscribe(CREDITS))
    await wait_for_numsub(stack.redis_url, f"user:{user.user_id}", 1)
    recording = [asyncio.create_task(mine.run(timeout=20)), asyncio.create_task(money.run(timeout=20))]

    # when it starts a generation and follows it with generationUpdated too
    generation_id = await stack.api_a.generate(user.token, stack.model_id)
    updated = Recorder(ws, await ws.subscribe(UPDATED, {"id": generation_id}))
    await updated.run(timeout=20)

    # then generationUpdated began with the current state and completed after SUCCEEDED
    assert updated.ended is not None and updated.ended["type"] == "complete"
    final = updated.items[-1]["data"]["generationUpdated"]
    assert final["generation"]["status"] == "SUCCEEDED"
    assert final["generation"]["outputs"][0]["contentType"] == "image/png"
    assert final["generation"]["model"]["slug"] == "sim-image"
    assert updated.items[0]["data"]["generationUpdated"]["previousStatus"] is None

    # and myGenerationEvents saw every step, with progress, ending with outputs
    deadline = time.monotonic() + 5
    while statuses(mine.items, "myGenerationEvents")[-1:] != ["SUCCEEDED"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert statuses(mine.items, "myGenerationEvents") == ["QUEUED", "SUBMITTING", "PROCESSING", "SUCCEEDED"]
    events = [p["data"]["myGenerationEvents"] for p in mine.items]
    assert all(e["generation"]["id"] == generation_id for e in events)
    progress = [e["generation"]["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any(0 < e["generation"]["progress"] < 1 for e in events if e["generation"]["status"] == "PROCESSING"), events
    succeeded = [e for e in events if e["generation"]["status"] == "SUCCEEDED"]
    done = succeeded[0]
    assert done["previousStatus"] == "PROCESSING" and done["generation"]["chargedCredits"] == 10
    assert done["generation"]["outputs"][0]["size"] > 0 and done["generation"]["outputs"][0]["url"]
    # (its thumbnail, once made, is announced as a change of the SUCCEEDED generation)
    assert all(e["previousStatus"] == "SUCCEEDED" for e in succeeded[1:]), succeeded

    # and creditsChanged showed the hold, then the capture
    while len(money.items) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    balances = [p["data"]["creditsChanged"] for p in money.items]
    assert balances[0] == {"balance": 100, "reserved": 10, "available": 90}
    assert balances[-1] == {"balance": 90, "reserved": 0, "available": 90}

    # and a late subscriber to the finished generation gets its final state, then complete
    late = Recorder(ws, await ws.subscribe(UPDATED, {"id": generation_id}))
    await late.run(timeout=10)
    assert [p["data"]["generationUpdated"]["generation"]["status"] for p in late.items] == ["SUCCEEDED"]
    assert late.ended is not None and late.ended["type"] == "complete"
    await ws.close()
    for task in recording:
        await task


async def test_a_subscriber_on_replica_a_sees_a_generation_started_through_replica_b(stack: Stack) -> None:
    # given a subscriber connected to replica A
    user = await stack.user(credits=50)
    ws = await connect(stack.a, user)
    mine = Recorder(ws, await ws.subscribe(MY_EVENTS))
    await wait_for_numsub(stack.redis_url, f"user:{user.user_id}", 1)
    recording = asyncio.create_task(mine.run(timeout=20))

    # when the generation is started through replica B (and run by the worker process)
    generation_id = await stack.api_b.generate(user.token, stack.model_id)

    # then replica A delivers its whole lifecycle
    deadline = time.monotonic() + 20
    while statuses(mine.items, "myGenerationEvents")[-1:] != ["SUCCEEDED"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert statuses(mine.items, "myGenerationEvents") == ["QUEUED", "SUBMITTING", "PROCESSING", "SUCCEEDED"]
    assert {p["data"]["myGenerationEvents"]["generation"]["id"] for p in mine.items} == {generation_id}
    await ws.close()
    await recording


async def test_legacy_graphql_ws_clients_get_the_same_stream(stack: Stack) -> None:
    # given a legacy graphql-ws client authenticated with {"token": ...}
    user = await stack.user(credits=50)
    ws = await LegacyWs.connect(stack.a.ws_url, {"token": user.token})
    money = await ws.subscribe(CREDITS)
    await wait_for_numsub(stack.redis_url, f"user:{user.user_id}", 1)

    # when credits move and a generation is started then canceled
    await grant_credits(stack.container, user.user_id, 7)
    generation_id = await stack.api_a.generate(user.token, stack.model_id)
    updated = Recorder(ws, await ws.subscribe(UPDATED, {"id": generation_id}))
    first = await ws.next_data(updated.op_id)
    canceled = await stack.api_a.cancel(user.token, generation_id)
    await updated.run(timeout=15)

    # then the balance and the generation arrive as `data`, and the stream completes
    assert await ws.next_data(money) == {"creditsChanged": {"balance": 57, "reserved": 0, "available": 57}}
    assert first["generationUpdated"]["generation"]["id"] == generation_id
    if canceled["__typename"] == "CancelSuccess":
        assert updated.items[-1]["data"]["generationUpdated"]["generation"]["status"] == "CANCELED"
        assert updated.items[-1]["data"]["generationUpdated"]["generation"]["error"]["code"] == "CANCELED"
    assert updated.ended is not None and updated.ended["type"] == "complete"
    # and the server sent legacy keep-alives (`ka`) meanwhile
    await eventually(lambda: ws.pings > 0, what="a keep-alive ping", timeout=3)
    await ws.close()


# ---------------------------------------------------------------- isolation and authorization


async def test_a_subscriber_never_receives_another_users_events(stack: Stack) -> None:
    # given two users, each subscribed to everything of theirs
    alice, bob = await stack.user(credits=30), await stack.user(credits=30)
    alice_ws, bob_ws = await connect(stack.a, alice), await connect(stack.b, bob)
    alice_ops = [await alice_ws.subscribe(MY_EVENTS), await alice_ws.subscribe(CREDITS)]
    bob_events = await bob_ws.subscribe(MY_EVENTS)
    await wait_for_numsub(stack.redis_url, f"user:{alice.user_id}", 1)
    await wait_for_numsub(stack.redis_url, f"user:{bob.user_id}", 1)

    # when bob's generation runs and bob's credits move
    generation_id = await stack.api_b.generate(bob.token, stack.model_id)
    await grant_credits(stack.container, bob.user_id, 5)
    bob_seen = Recorder(bob_ws, bob_events)
    recording = asyncio.create_task(bob_seen.run(timeout=20))
    deadline = time.monotonic() + 20
    while statuses(bob_seen.items, "myGenerationEvents")[-1:] != ["SUCCEEDED"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert statuses(bob_seen.items, "myGenerationEvents")[-1] == "SUCCEEDED"

    # then alice received nothing at all
    await asyncio.sleep(0.3)  # an absence cannot be awaited: a window for a stray event to show up
    for op in alice_ops:
        assert alice_ws.by_id[op].empty(), alice_ws.by_id[op]

    # and alice cannot watch bob's generation by id: NOT_FOUND, then the operation ends
    spy = await alice_ws.subscribe(UPDATED, {"id": generation_id})
    message = await alice_ws.receive(spy)
    errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors")
    assert errors and errors[0]["extensions"]["code"] == "NOT_FOUND", message
    assert message["type"] == "error" or message["payload"]["data"] is None
    await alice_ws.close()
    await bob_ws.close()
    await recording


async def test_a_board_member_watches_the_owners_generation(stack: Stack) -> None:
    # given an owner's generation in a board that a viewer belongs to, and an outsider
    owner, member, outsider = await stack.user(credits=30), await stack.user(), await stack.user()
    board = (await stack.api_a.execute(CREATE_BOARD, {"name": "team"}, token=owner.token))["createBoard"]
    board_id = board["board"]["id"]
    added = await stack.api_a.execute(ADD_MEMBER, {"board": board_id, "email": member.email}, token=owner.token)
    assert added["addBoardMember"]["__typename"] == "BoardSuccess"
    accepted = await stack.api_a.execute(ACCEPT, {"board": board_id}, token=member.token)
    assert accepted["acceptBoardInvitation"]["__typename"] == "BoardSuccess"
    generation_id = await stack.api_a.generate(owner.token, stack.model_id, board=board_id)

    # when the member subscribes to it by id (and the outsider tries)
    member_ws, outsider_ws = await connect(stack.b, member), await connect(stack.b, outsider)
    watched = Recorder(member_ws, await member_ws.subscribe(UPDATED, {"id": generation_id}))
    refused = await outsider_ws.subscribe(UPDATED, {"id": generation_id})
    await watched.run(timeout=20)

    # then the member follows it to its final state through the owner's channel
    assert watched.items[-1]["data"]["generationUpdated"]["generation"]["status"] == "SUCCEEDED"
    assert watched.ended is not None and watched.ended["type"] == "complete"
    # and the outsider got NOT_FOUND
    message = await outsider_ws.receive(refused)
    errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors")
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    await member_ws.close()
    await outsider_ws.close()


@pytest.mark.parametrize("client", [TransportWs, LegacyWs], ids=["graphql-transport-ws", "graphql-ws"])
@pytest.mark.parametrize("case", ["garbage", "missing", "expired", "wrong-secret"])
async def test_a_bad_token_is_closed_with_4401(stack: Stack, client: type[TransportWs | LegacyWs], case: str) -> None:
    # given a token that proves nothing
    user_id = uuid.uuid4()
    payload: dict[str, str] = {}
    if case == "garbage":
        payload = {"Authorization": "Bearer not-a-jwt"}
    elif case == "expired":
        old = datetime.now(UTC) - timedelta(hours=1)
        payload = {"Authorization": "Bearer " + tokens_with_ttl(60).issue_access(user_id, Role.USER, now=old).token}
    elif case == "wrong-secret":
        forged = TokenService(
            algorithm="HS256",
            signing_key="another-secret-0123456789abcdef0123456789",
            verifying_key="x",
            issuer="genhub",
            access_ttl=60,
            refresh_ttl=60,
        )
        payload = {"token": forged.issue_access(user_id, Role.ADMIN).token}

    # when a client sends it in connection_init
    with pytest.raises(Refused) as refused:
        await client.connect(stack.a.ws_url, payload)

    # then the connection is closed with 4401 Unauthorized
    assert refused.value.code == 4401
    assert refused.value.reason is not None and refused.value.reason.startswith("Unauthorized")


async def test_the_upgrade_requests_authorization_header_authenticates(stack: Stack) -> None:
    # given a client that sends its token as a header of the HTTP upgrade, not in the payload
    user = await stack.user()
    ws = await TransportWs.connect(stack.a.ws_url, {}, headers={"Authorization": f"Bearer {user.token}"})
    op = await ws.subscribe(CREDITS)
    await wait_for_numsub(stack.redis_url, f"user:{user.user_id}", 1)

    # when its credits move
    await grant_credits(stack.container, user.user_id, 3)

    # then it is served, and it was pinged for keep-alive meanwhile
    assert await ws.next_data(op) == {"creditsChanged": {"balance": 3, "reserved": 0, "available": 3}}
    await eventually(lambda: ws.pings > 0, what="a keep-alive ping", timeout=3)
    await ws.close()


async def test_a_token_expiring_during_the_connection_stops_the_events(stack: Stack) -> None:
    # given a connection whose token expires in about two seconds
    user = await stack.user()
    token = tokens_with_ttl(3).issue_access(user.user_id, Role.USER)
    ws = await TransportWs.connect(stack.a.ws_url, {"Authorization": f"Bearer {token.token}"})
    op = await ws.subscribe(CREDITS)
    await wait_for_numsub(stack.redis_url, f"user:{user.user_id}", 1)
    await grant_credits(stack.container, user.user_id, 1)
    assert await ws.next_data(op) == {"creditsChanged": {"balance": 1, "reserved": 0, "available": 1}}

    # when the token expires
    code = await ws.wait_closed(timeout=10)

    # then the server closed the connection with 4401 at expiry, and the subscription is gone
    assert code == 4401
    assert datetime.now(UTC) >= token.expires_at.replace(microsecond=0)  # the JWT's exp is whole seconds
    await wait_for_numsub(stack.redis_url, f"user:{user.user_id}", 0)
    await grant_credits(stack.container, user.user_id, 1)
    await asyncio.sleep(0.2)  # an absence cannot be awaited: a window for a stray event to show up
    assert [m for m in drain(ws.by_id[op]) if m.get("type") == "next"] == []


# ---------------------------------------------------------------- the endpoint


async def test_http_get_and_post_at_graphql_keep_working_beside_the_websocket(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.a.http_url) as http:
        posted = await http.post("/graphql", json={"query": TYPENAME})
        fetched = await http.get("/graphql", params={"query": TYPENAME})
        subscription_over_http = await http.post("/graphql", json={"query": CREDITS})
    assert posted.status_code == 200 and posted.json() == {"data": {"__typename": "Query"}}
    assert fetched.status_code == 200 and fetched.json() == {"data": {"__typename": "Query"}}
    assert subscription_over_http.status_code == 400


async def test_a_connection_may_hold_at_most_50_operations(stack: Stack) -> None:
    user = await stack.user()
    ws = await connect(stack.a, user)
    for _ in range(50):
        await ws.subscribe(CREDITS)
    over = await ws.subscribe(CREDITS)
    message = await ws.receive(over)
    assert message["type"] == "error" and message["payload"][0]["message"] == "Subscription limit reached"
    await ws.close()


async def test_closing_connections_releases_their_redis_subscriptions(stack: Stack) -> None:
    # given 20 connections of one user, each with two subscriptions, spread over both replicas
    user = await stack.user()
    clients = [await connect(stack.a if i % 2 else stack.b, user) for i in range(20)]
    for ws in clients:
        await ws.subscribe(CREDITS)
        await ws.subscribe(MY_EVENTS)
    # then each replica holds one Redis subscription for the user, not one per subscriber
    await wait_for_numsub(stack.redis_url, f"user:{user.user_id}", 2)

    # when the clients go away (half politely, half by dropping the socket)
    for i, ws in enumerate(clients):
        if i % 2:
            await ws.close()
        else:
            ws.ws.transport.abort()

    # then no Redis subscription is left behind
    await wait_for_numsub(stack.redis_url, f"user:{user.user_id}", 0)
