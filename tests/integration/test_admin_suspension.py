"""suspendUser and reinstateUser on two replicas sharing PostgreSQL and Redis.

The access gate (tests/integration/test_access_gate.py) is the mechanism; these tests prove
the admin mutations trigger it: the suspended user's open subscription on the OTHER replica
closes, their token is refused over HTTP, signing in and refreshing answer AccountSuspended
or InvalidCredentials, and a reinstated user signs in again. Concurrent suspensions of one
account make one change and one audit entry each.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from domain.users import Role
from tests.fixtures.app import GraphQLClient, SettingsFactory, admin_token
from tests.integration.test_access_gate import (
    LOGIN,
    PASSWORD,
    REFRESH,
    closed_with,
    me,
    replicas,
    signed_in,
    subscribed,
)

pytestmark = pytest.mark.postgres

SUSPEND = """
mutation Suspend($id: ID!, $reason: String!) {
  suspendUser(id: $id, reason: $reason) {
    __typename
    ... on UserSuspensionSuccess { changed user { id email suspendedAt credits { balance } } }
    ... on Error { code }
  }
}
"""
REINSTATE = """
mutation Reinstate($id: ID!) {
  reinstateUser(id: $id) {
    __typename
    ... on UserSuspensionSuccess { changed user { suspendedAt } }
    ... on Error { code }
  }
}
"""


@pytest.fixture
async def pair(
    make_settings: SettingsFactory, clean_postgres: str, clean_redis: str
) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    async with replicas(make_settings(database_url=clean_postgres, redis_url=clean_redis)) as both:
        yield both


async def suspend(client: GraphQLClient, token: str, user_id: uuid.UUID, reason: str = "abuse") -> dict[str, Any]:
    body = await client.execute(SUSPEND, {"id": str(user_id), "reason": reason}, token=token)
    result: dict[str, Any] = body["data"]["suspendUser"]
    return result


async def test_suspending_on_one_replica_closes_the_subscription_on_the_other_and_refuses_everything(
    pair: tuple[GraphQLClient, GraphQLClient],
) -> None:
    # given a user signed in and subscribed on replica A, and an admin on replica B
    a, b = pair
    user_id, token, refresh = await signed_in(a, "suspect@example.com")
    admin = await admin_token(b)
    assert await me(a, token) == set()
    async with subscribed(a, token) as ws:
        # when the admin suspends the user through the API on B
        started = time.monotonic()
        result = await suspend(b, admin, user_id)
        # then B answers the suspended account
        assert result["__typename"] == "UserSuspensionSuccess" and result["changed"] is True
        assert result["user"]["id"] == str(user_id) and result["user"]["suspendedAt"] is not None
        # and A closes the user's open subscription within about a second
        assert await closed_with(ws, timeout=1.5) == 4401
        assert time.monotonic() - started < 1.5
    # and the token is refused over HTTP on both replicas
    assert await me(a, token) == {"UNAUTHENTICATED"}
    assert await me(b, token) == {"UNAUTHENTICATED"}
    # and signing in answers AccountSuspended, refreshing InvalidCredentials (every refresh family revoked)
    login = (await a.execute(LOGIN, {"email": "suspect@example.com", "password": PASSWORD}))["data"]["login"]
    assert login["__typename"] == "AccountSuspended"
    renewed = (await a.execute(REFRESH, {"token": refresh}))["data"]["refreshToken"]
    assert renewed["__typename"] == "InvalidCredentials"
    # when the admin suspends again: no error, nothing changes, the first moment stays
    again = await suspend(a, admin, user_id, reason="still abuse")
    assert again["__typename"] == "UserSuspensionSuccess" and again["changed"] is False
    assert again["user"]["suspendedAt"] == result["user"]["suspendedAt"]
    # when reinstated on A, the user signs in again and works on both replicas; the old token stays refused
    back = (await a.execute(REINSTATE, {"id": str(user_id)}, token=admin))["data"]["reinstateUser"]
    assert back == {"__typename": "UserSuspensionSuccess", "changed": True, "user": {"suspendedAt": None}}
    login = (await b.execute(LOGIN, {"email": "suspect@example.com", "password": PASSWORD}))["data"]["login"]
    assert login["__typename"] == "AuthPayload"
    assert await me(a, login["accessToken"]) == set() and await me(b, login["accessToken"]) == set()
    assert await me(a, token) == {"UNAUTHENTICATED"}
    # and reinstating an active account changes nothing
    twice = (await b.execute(REINSTATE, {"id": str(user_id)}, token=admin))["data"]["reinstateUser"]
    assert twice["changed"] is False


async def test_an_admin_cannot_suspend_themselves_or_another_admin(pair: tuple[GraphQLClient, GraphQLClient]) -> None:
    # given two admins
    a, _ = pair
    admin = await admin_token(a)
    admin_id = uuid.UUID((await a.execute("{ me { id } }", token=admin))["data"]["me"]["id"])
    other_id, other_token, _ = await signed_in(a, "second-admin@example.com")
    async with a.container.uow() as uow:
        await uow.users.set_role(other_id, Role.ADMIN)
        await uow.commit()
    # when the first tries to suspend either, then Forbidden, and both still work
    for target in (admin_id, other_id):
        assert (await suspend(a, admin, target))["__typename"] == "Forbidden"
    assert await me(a, admin) == set() and await me(a, other_token) == set()
    # and a missing or malformed account is NotFound
    assert (await suspend(a, admin, uuid.uuid4()))["__typename"] == "NotFound"
    body = await a.execute(SUSPEND, {"id": "nope", "reason": "x"}, token=admin)
    assert body["data"]["suspendUser"]["__typename"] == "NotFound"


async def test_concurrent_suspensions_make_one_change_and_one_entry_each(
    pair: tuple[GraphQLClient, GraphQLClient], postgres_dsn: str
) -> None:
    # given a user and an admin, with a replica each
    a, b = pair
    user_id, token, _ = await signed_in(a, "raced@example.com")
    admin = await admin_token(a)
    # when eight suspensions of the account race, four on each replica
    results = await asyncio.gather(*(suspend(client, admin, user_id) for client in (a, b) * 4))
    # then all succeed, exactly one of them changed the account, and every call left one audit entry
    assert {r["__typename"] for r in results} == {"UserSuspensionSuccess"}
    assert sorted(r["changed"] for r in results) == [False] * 7 + [True]
    assert len({r["user"]["suspendedAt"] for r in results}) == 1
    conn = await asyncpg.connect(postgres_dsn)
    try:
        rows = await conn.fetch(
            "SELECT outcome FROM audit_log WHERE action = 'suspend_user' AND target_user_id = $1", user_id
        )
    finally:
        await conn.close()
    assert sorted(r["outcome"] for r in rows) == ["applied"] + ["unchanged"] * 7
    assert await me(a, token) == {"UNAUTHENTICATED"} and await me(b, token) == {"UNAUTHENTICATED"}
