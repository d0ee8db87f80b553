"""The access gate across replicas: two apps sharing PostgreSQL and Redis, one suspends or ends sessions,
the other refuses the token at once and closes its open subscriptions; with Redis down it still refuses."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.waiting import eventually
from tests.integration.asgi_websocket import AsgiWebSocket, WebSocketClosed

pytestmark = pytest.mark.postgres

ME = "query Me { me { id } }"
LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    __typename
    ... on AuthPayload { accessToken refreshToken }
    ... on Error { code message }
  }
}
"""
REFRESH = """
mutation Refresh($token: String!) {
  refreshToken(refreshToken: $token) { __typename ... on AuthPayload { accessToken } ... on Error { code } }
}
"""
CREDITS = "subscription Credits { creditsChanged { available } }"
PASSWORD = "correct horse battery"


def codes(body: dict[str, Any]) -> set[str]:
    return {str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []}


async def me(client: GraphQLClient, token: str) -> set[str]:
    """The error codes of `me` with this token (empty: admitted)."""
    return codes(await client.execute(ME, token=token, expect_errors=True))


@contextlib.asynccontextmanager
async def replicas(settings: Any) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    async with running_app(settings) as a, running_app(settings) as b:
        yield a, b


@pytest.fixture
async def pair(
    make_settings: SettingsFactory, clean_postgres: str, clean_redis: str
) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    async with replicas(make_settings(database_url=clean_postgres, redis_url=clean_redis)) as both:
        yield both


async def signed_in(client: GraphQLClient, email: str) -> tuple[uuid.UUID, str, str]:
    """(user id, access token, refresh token) of a new account."""
    auth = await register_user(client, email, PASSWORD)
    return uuid.UUID(auth["user"]["id"]), auth["accessToken"], auth["refreshToken"]


@contextlib.asynccontextmanager
async def subscribed(client: GraphQLClient, token: str) -> AsyncIterator[AsgiWebSocket]:
    """A graphql-transport-ws connection with a running creditsChanged subscription."""
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": CREDITS}})
        await eventually(lambda: client.container.access_gate.watched() >= 1, what="the connection watched")
        yield ws


async def closed_with(ws: AsgiWebSocket, timeout: float) -> int:
    """The close code the server sends within `timeout` (messages before it are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await ws.receive_json(timeout=max(0.01, deadline - time.monotonic()))
        except WebSocketClosed as closed:
            return closed.code


async def test_a_suspension_on_one_replica_refuses_the_token_on_the_other_within_a_second(
    pair: tuple[GraphQLClient, GraphQLClient],
) -> None:
    # given a user whose token replica A has admitted (and remembers admitting)
    a, b = pair
    user_id, token, refresh = await signed_in(a, "ada@example.com")
    assert await me(a, token) == set()
    # when replica B suspends the user
    started = time.monotonic()
    await b.services.accounts.suspend(user_id)
    # then A refuses the token within about a second, B at once
    assert await me(b, token) == {"UNAUTHENTICATED"}
    await eventually(lambda: _refused(a, token), what="replica A refusing the token", timeout=1.5)
    assert time.monotonic() - started < 1.5
    # and signing in or refreshing says the account is suspended (on either replica)
    login = (await a.execute(LOGIN, {"email": "ada@example.com", "password": PASSWORD}))["data"]["login"]
    assert login["__typename"] == "AccountSuspended" and login["code"] == "ACCOUNT_SUSPENDED"
    renewed = (await b.execute(REFRESH, {"token": refresh}))["data"]["refreshToken"]
    assert renewed["__typename"] == "InvalidCredentials"  # the suspension revoked every refresh family
    # when reinstated, a new sign-in works on both, and the old token stays refused
    await a.services.accounts.reinstate(user_id)
    login = (await b.execute(LOGIN, {"email": "ada@example.com", "password": PASSWORD}))["data"]["login"]
    assert login["__typename"] == "AuthPayload"
    assert await me(a, login["accessToken"]) == set()
    assert await me(a, token) == {"UNAUTHENTICATED"}


async def _refused(client: GraphQLClient, token: str) -> bool:
    return await me(client, token) == {"UNAUTHENTICATED"}


async def test_a_suspension_closes_the_open_subscription_on_the_other_replica(
    pair: tuple[GraphQLClient, GraphQLClient],
) -> None:
    # given an open subscription on replica A, and another user's on A too
    a, b = pair
    user_id, token, _ = await signed_in(a, "sub@example.com")
    _, bystander, _ = await signed_in(a, "bystander@example.com")
    async with subscribed(a, token) as ws, subscribed(a, bystander) as other:
        # when replica B suspends the first user
        started = time.monotonic()
        await b.services.accounts.suspend(user_id)
        # then A closes that connection with 4401 within about a second, and leaves the other open
        assert await closed_with(ws, timeout=1.5) == 4401
        assert time.monotonic() - started < 1.5
        with pytest.raises(TimeoutError):
            await other.receive_json(timeout=0.3)
        # and a new connection with the token is refused at connection_init
        async with AsgiWebSocket(a.app) as again:
            await again.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
            assert await closed_with(again, timeout=2) == 4401


async def test_a_subscription_started_on_an_open_connection_after_revocation_is_refused(
    pair: tuple[GraphQLClient, GraphQLClient],
) -> None:
    # given a connection acknowledged on replica A before the user's sessions end on B, its watcher stopped
    # (so only the check when an operation starts can catch it)
    a, b = pair
    user_id, token, _ = await signed_in(a, "late@example.com")
    async with AsgiWebSocket(a.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        gate = a.container.access_gate
        gate._watchers.clear()
        await b.services.accounts.end_all_sessions(user_id)
        await eventually(lambda: _refused(a, token), what="replica A refusing the token", timeout=1.5)
        # when it starts a subscription, then the operation is refused as unauthenticated
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": CREDITS}})
        message = await ws.receive_json()
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_token_issued_in_the_same_second_as_the_revocation_does_not_survive_it(
    pair: tuple[GraphQLClient, GraphQLClient],
) -> None:
    # given sign-ins just before and just after every session of the user ends, well within one second
    a, b = pair
    user_id, before, _ = await signed_in(a, "same@example.com")
    await b.services.accounts.end_all_sessions(user_id)
    login = (await a.execute(LOGIN, {"email": "same@example.com", "password": PASSWORD}))["data"]["login"]
    # then the earlier token is refused and the later one admitted, on both replicas
    for replica in (a, b):
        assert await me(replica, before) == {"UNAUTHENTICATED"}
        assert await me(replica, login["accessToken"]) == set()


async def test_with_redis_down_a_revocation_still_takes_effect_at_once(
    make_settings: SettingsFactory, clean_postgres: str, redis_server: RedisServer
) -> None:
    settings = make_settings(database_url=clean_postgres, redis_url=redis_server.url)
    async with replicas(settings) as (a, b):
        # given a token admitted on A, then Redis gone: no announcement can travel any more
        user_id, token, _ = await signed_in(a, "down@example.com")
        assert await me(a, token) == set()
        redis_server.stop()
        gate = a.container.access_gate
        await eventually(lambda: not gate.trusted, what="replica A noticing the lost channel", timeout=5)
        # when B suspends the user (its announcement cannot be published)
        await b.services.accounts.suspend(user_id)
        assert b.container.revocations.publish_failures == 1
        # then A refuses the token at once: it reads the database on every check meanwhile (fails to the database)
        assert await me(a, token) == {"UNAUTHENTICATED"}
        # when Redis is back, A trusts its memo again
        redis_server.start()
        await eventually(lambda: gate.trusted, what="replica A hearing announcements again", timeout=15)
        assert await me(a, token) == {"UNAUTHENTICATED"}
        reads = gate.reads
        await b.services.accounts.reinstate(user_id)
        login = (await a.execute(LOGIN, {"email": "down@example.com", "password": PASSWORD}))["data"]["login"]
        for _ in range(3):
            assert await me(a, login["accessToken"]) == set()
        assert gate.reads <= reads + 2  # remembered again (one read per announcement-forgotten state)


async def test_an_announcement_lost_in_transit_is_made_up_for_within_the_ttl(
    make_settings: SettingsFactory, clean_postgres: str, clean_redis: str
) -> None:
    # given two replicas whose gates trust what they read for half a second
    settings = make_settings(database_url=clean_postgres, redis_url=clean_redis, access_gate_ttl_seconds=0.5)
    async with replicas(settings) as (a, b):
        user_id, token, _ = await signed_in(a, "lost@example.com")
        assert await me(a, token) == set()
        async with subscribed(a, token) as ws:
            # when B suspends the user and its announcement is lost (written behind the replicas' backs)
            async with b.container.uow() as uow:
                await uow.users.set_suspended(user_id, b.container.clock.now())
                await uow.commit()
            # then A refuses the token and closes the connection after the TTL all the same
            assert await closed_with(ws, timeout=3) == 4401
        assert await me(a, token) == {"UNAUTHENTICATED"}


async def test_concurrent_suspensions_and_reinstatements_end_in_the_last_state(
    pair: tuple[GraphQLClient, GraphQLClient],
) -> None:
    a, b = pair
    user_id, token, _ = await signed_in(a, "race@example.com")
    await asyncio.gather(*(r.services.accounts.suspend(user_id) for r in (a, b, a, b)))
    user = await a.services.accounts.find("race@example.com")
    assert user is not None and user.is_suspended
    assert await me(a, token) == {"UNAUTHENTICATED"} and await me(b, token) == {"UNAUTHENTICATED"}


async def test_a_reused_refresh_token_ends_its_sessions_access_tokens_on_every_replica(
    pair: tuple[GraphQLClient, GraphQLClient],
) -> None:
    # given a session whose refresh token was copied: the thief refreshed on A, admitted there and on B
    a, b = pair
    _, token, stolen = await signed_in(a, "theft@example.com")
    rotated = (await a.execute(REFRESH, {"token": stolen}))["data"]["refreshToken"]
    assert rotated["__typename"] == "AuthPayload"
    assert await me(a, rotated["accessToken"]) == set() and await me(b, rotated["accessToken"]) == set()
    # when the owner presents the spent token on B (reuse: the family is revoked)
    reused = (await b.execute(REFRESH, {"token": stolen}))["data"]["refreshToken"]
    assert reused["__typename"] == "InvalidCredentials"
    # then every access token of that session is refused on both replicas within about a second
    for replica in (a, b):
        for access in (token, rotated["accessToken"]):
            await eventually(
                lambda r=replica, t=access: _refused(r, t), what="the session's tokens refused", timeout=1.5
            )
