"""requestDataExport, myDataExports and dataExport(id) over GraphQL on PostgreSQL.

The builds are queued on a Redis stream that no worker reads here, so every export stays
PENDING unless a test moves it: what is checked is the request side (one export per user
while one is on its way, even for concurrent callers; the daily allowance; ownership; bad
arguments). The build itself is tested with real worker processes in
tests/integration/workers/test_data_exports.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from domain.data_exports import ExportStatus, export_key
from infrastructure.db.tables import DATA_EXPORTS
from tests.fixtures.app import GraphQLClient, SettingsFactory, running_app
from tests.fixtures.users import add_user

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ALLOWANCE = 2
WINDOW = 3600

REQUEST = """
mutation { requestDataExport {
  __typename
  ... on RequestDataExportSuccess { export { id status createdAt expiresAt size sha256 errorCode url { url } } }
  ... on RateLimited { code retryAfterSeconds }
} }
"""
ONE = """
query One($id: ID!, $seconds: Int! = 900) { dataExport(id: $id) {
  __typename
  ... on DataExport { id status size sha256 expiresAt url(expiresInSeconds: $seconds) { url expiresAt } }
  ... on NotFound { code }
} }
"""
MINE = "query Mine($first: Int! = 10) { myDataExports(first: $first) { id status } }"


@dataclass
class Caller:
    id: uuid.UUID
    token: str


@dataclass
class Env:
    client: GraphQLClient

    async def caller(self) -> Caller:
        c = self.client.container
        user = await add_user(c)
        return Caller(user.id, c.tokens.issue_access(user.id, user.role).token)

    async def gql(self, query: str, caller: Caller | None, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.client.execute(query, variables, token=caller.token if caller else "", expect_errors=True)

    async def request(self, caller: Caller) -> dict[str, Any]:
        body = await self.gql(REQUEST, caller)
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["requestDataExport"]
        return result

    async def rows(self, user_id: uuid.UUID) -> int:
        async with self.client.container.engine.connect() as conn:
            stmt = select(func.count()).select_from(DATA_EXPORTS).where(DATA_EXPORTS.c.user_id == user_id)
            return int((await conn.execute(stmt)).scalar_one())

    async def set(self, export_id: str, **values: Any) -> None:
        async with self.client.container.engine.begin() as conn:
            await conn.execute(update(DATA_EXPORTS).where(DATA_EXPORTS.c.id == uuid.UUID(export_id)).values(**values))


@pytest.fixture
async def env(make_settings: SettingsFactory, clean_postgres: str, clean_redis: str) -> AsyncIterator[Env]:
    settings = make_settings(
        database_url=clean_postgres,
        redis_url=clean_redis,
        data_export_allowance=ALLOWANCE,
        data_export_window_seconds=WINDOW,
    )
    async with running_app(settings) as client:
        yield Env(client)


async def test_a_second_request_while_one_is_pending_returns_the_same_export(env: Env) -> None:
    # given a user who requested an export
    caller = await env.caller()
    first = await env.request(caller)
    assert first["__typename"] == "RequestDataExportSuccess", first
    assert first["export"]["status"] == "PENDING" and first["export"]["url"] is None
    # when they ask again while it is pending, and again while it is building
    again = await env.request(caller)
    await env.set(first["export"]["id"], status=ExportStatus.BUILDING.value)
    building = await env.request(caller)
    # then both answers are the first export, one row exists, and no allowance was spent on them
    assert again["export"]["id"] == building["export"]["id"] == first["export"]["id"]
    assert building["export"]["status"] == "BUILDING"
    assert await env.rows(caller.id) == 1


async def test_concurrent_requests_get_one_export(env: Env) -> None:
    # given a user with no export
    caller = await env.caller()
    # when twelve requests arrive at once
    answers = await asyncio.gather(*(env.request(caller) for _ in range(12)))
    # then every caller got the same export, and only one was written
    assert {a["__typename"] for a in answers} == {"RequestDataExportSuccess"}, answers
    assert len({a["export"]["id"] for a in answers}) == 1
    assert await env.rows(caller.id) == 1


async def test_the_allowance_per_window_is_rate_limited(env: Env) -> None:
    # given a user whose exports finish one after the other
    caller = await env.caller()
    for _ in range(ALLOWANCE):
        made = await env.request(caller)
        assert made["__typename"] == "RequestDataExportSuccess", made
        await env.set(made["export"]["id"], status=ExportStatus.FAILED.value, error_code="EXPORT_FAILED")
    # when they ask for one more within the window
    refused = await env.request(caller)
    # then it is RateLimited until the oldest export leaves the window, and nothing was written
    assert refused["__typename"] == "RateLimited", refused
    assert 0 < refused["retryAfterSeconds"] <= WINDOW + 1
    assert await env.rows(caller.id) == ALLOWANCE
    # and once the oldest is older than the window, a new one is allowed
    (oldest, *_) = sorted((await env.gql(MINE, caller))["data"]["myDataExports"], key=lambda e: e["id"])
    async with env.client.container.engine.begin() as conn:
        await conn.execute(
            update(DATA_EXPORTS)
            .where(DATA_EXPORTS.c.id == uuid.UUID(oldest["id"]))
            .values(created_at=DATA_EXPORTS.c.created_at - timedelta(seconds=WINDOW + 5))
        )
    assert (await env.request(caller))["__typename"] == "RequestDataExportSuccess"


async def test_another_user_cannot_read_or_list_an_export(env: Env) -> None:
    # given an export of its owner, READY with an archive in storage
    owner, other = await env.caller(), await env.caller()
    export_id = (await env.request(owner))["export"]["id"]
    key = export_key(owner.id, uuid.UUID(export_id))
    stored = await env.client.container.storage.put_bytes(
        key, b"PK\x05\x06" + bytes(18), content_type="application/zip"
    )
    now = env.client.container.clock.now()
    await env.set(
        export_id,
        status=ExportStatus.READY.value,
        object_key=key,
        size=stored.size,
        sha256=stored.sha256,
        expires_at=now + timedelta(days=1),
    )
    # when another user asks for it by id, and lists their own
    theirs = await env.gql(ONE, other, {"id": export_id})
    listed = await env.gql(MINE, other)
    # then it is NotFound to them and not in their list
    assert theirs["data"]["dataExport"] == {"__typename": "NotFound", "code": "NOT_FOUND"}
    assert listed["data"]["myDataExports"] == []
    # while its owner reads it with a signed URL that never outlives the archive
    mine = (await env.gql(ONE, owner, {"id": export_id, "seconds": 7 * 24 * 3600}))["data"]["dataExport"]
    assert mine["status"] == "READY" and mine["size"] == stored.size and mine["sha256"] == stored.sha256
    assert mine["url"]["url"] and mine["url"]["expiresAt"] <= mine["expiresAt"]


async def test_a_url_signed_through_the_api_lives_fifteen_minutes_at_most(env: Env) -> None:
    # given a READY export whose archive stays a week (a stolen session could ask for a week-long link)
    owner = await env.caller()
    export_id = (await env.request(owner))["export"]["id"]
    key = export_key(owner.id, uuid.UUID(export_id))
    await env.client.container.storage.put_bytes(key, b"PK\x05\x06" + bytes(18), content_type="application/zip")
    now = env.client.container.clock.now()
    await env.set(export_id, status=ExportStatus.READY.value, object_key=key, expires_at=now + timedelta(days=7))
    # when its owner asks for a URL valid a week, and for one valid five minutes
    week = (await env.gql(ONE, owner, {"id": export_id, "seconds": 7 * 24 * 3600}))["data"]["dataExport"]
    short = (await env.gql(ONE, owner, {"id": export_id, "seconds": 300}))["data"]["dataExport"]
    # then the long one is granted 15 minutes (its expiresAt says so), the short one as asked
    granted = datetime.fromisoformat(week["url"]["expiresAt"]) - now
    assert timedelta(minutes=14) < granted <= timedelta(minutes=15, seconds=5), granted
    assert datetime.fromisoformat(short["url"]["expiresAt"]) - now <= timedelta(minutes=5, seconds=5)


async def test_no_url_once_the_archive_expired_even_before_the_sweep(env: Env) -> None:
    # given a READY export whose expiry passed (the sweep has not run yet)
    owner = await env.caller()
    export_id = (await env.request(owner))["export"]["id"]
    now = env.client.container.clock.now()
    await env.set(
        export_id,
        status=ExportStatus.READY.value,
        object_key=export_key(owner.id, uuid.UUID(export_id)),
        size=1,
        sha256="0" * 64,
        expires_at=now - timedelta(seconds=1),
    )
    # when its owner reads it
    mine = (await env.gql(ONE, owner, {"id": export_id}))["data"]["dataExport"]
    # then no URL is offered
    assert mine["status"] == "READY" and mine["url"] is None


async def test_bad_arguments_and_anonymous_callers_are_refused(env: Env) -> None:
    owner = await env.caller()
    export_id = (await env.request(owner))["export"]["id"]
    await env.set(
        export_id,
        status=ExportStatus.READY.value,
        object_key=export_key(owner.id, uuid.UUID(export_id)),
        expires_at=env.client.container.clock.now() + timedelta(days=1),
    )
    # an unknown id and a malformed one are NotFound
    for missing in (str(uuid.uuid4()), "not-a-uuid", ""):
        body = await env.gql(ONE, owner, {"id": missing})
        assert body["data"]["dataExport"]["__typename"] == "NotFound", body
    # a page size out of range and a URL lifetime out of range are INVALID_INPUT
    for query, variables in ((MINE, {"first": 51}), (MINE, {"first": -1}), (ONE, {"id": export_id, "seconds": 0})):
        body = await env.gql(query, owner, variables)
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body
    body = await env.gql(ONE, owner, {"id": export_id, "seconds": 7 * 24 * 3600 + 1})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body
    # and nobody signed in may request or read exports
    for query, variables in ((REQUEST, None), (MINE, None), (ONE, {"id": export_id})):
        body = await env.gql(query, None, variables)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    assert await env.rows(owner.id) == 1


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.text(max_size=80))
async def test_hostile_ids_are_not_found(env: Env, raw: str) -> None:
    # given any text as the id (a caller probing for others' exports)
    caller = await env.caller()
    body = await env.gql(ONE, caller, {"id": raw})
    # then the answer is NotFound, or the argument is refused as text that cannot be stored
    if "errors" in body:
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body
    else:
        assert body["data"]["dataExport"]["__typename"] == "NotFound", body
