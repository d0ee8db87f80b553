"""API keys through the real app on PostgreSQL: created, listed, used over HTTP and WebSocket, held to
their scopes, revoked; the unhappy paths (someone else's key, a missing one, the cap, bad input, replays,
concurrent creates), what survives a password change and what a suspension or deletion ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

from domain.api_keys import INVALID_KEY, MAX_KEYS_PER_USER
from graph.http import bearer_token
from infrastructure.api_key_usage import LastUsedFlusher
from infrastructure.db.engine import create_session_factory
from infrastructure.db.uow import SqlUnitOfWorkFactory
from tests.fixtures.app import GraphQLClient, admin_token, app_settings, register_user, running_app
from tests.fixtures.services import TABLES, asyncpg_to_sqlalchemy
from tests.fixtures.waiting import eventually
from tests.integration.asgi_websocket import AsgiWebSocket, WebSocketClosed

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery"
ME = "query Me { me { id } }"
MODELS = "query Models { models { id } }"
CREATE = """
mutation Create($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    __typename
    ... on CreateApiKeySuccess { key apiKey { id name prefix scopes createdAt expiresAt lastUsedAt revokedAt } }
    ... on Error { code message }
    ... on InvalidInput { fields { field message } }
    ... on QuotaExceeded { limit }
  }
}
"""
REVOKE = """
mutation Revoke($id: ID!) {
  revokeApiKey(id: $id) {
    __typename
    ... on RevokeApiKeySuccess { changed apiKey { id revokedAt } }
    ... on Error { code message }
  }
}
"""
LIST = "query Keys($userId: ID) { apiKeys(userId: $userId) { id name prefix scopes lastUsedAt revokedAt } }"
GENERATE = """mutation { generate(input: {modelId: "00000000-0000-0000-0000-000000000000", prompt: "x"}) {
  __typename } }"""
CHANGE_PASSWORD = """mutation Change($c: String!, $n: String!) {
  changePassword(input: {currentPassword: $c, newPassword: $n}) { __typename ... on ChangePasswordSuccess { accessToken } } }"""
LOGOUT_EVERYWHERE = "mutation { logoutEverywhere { __typename } }"
SUSPEND = 'mutation Suspend($id: ID!) { suspendUser(id: $id, reason: "abuse") { __typename } }'
DELETE_ACCOUNT = """mutation Delete($p: String!) { deleteAccount(input: {password: $p}) { __typename } }"""
AUDIT = (
    "query Audit($action: AuditAction) { auditLog(action: $action) { edges { node { action outcome targetUserId } } } }"
)
CREDITS = "subscription Credits { creditsChanged { available } }"


def codes(body: dict[str, Any]) -> list[str]:
    return [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]


def messages(body: dict[str, Any]) -> list[str]:
    return [str(e.get("message")) for e in body.get("errors") or []]


@pytest.fixture(scope="module")
async def client(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    """One app for the module on the session's PostgreSQL, emptied once: every test makes accounts of its own."""
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(f"TRUNCATE {TABLES} CASCADE")
    finally:
        await conn.close()
    settings = app_settings(
        tmp_path_factory.mktemp("keys-pg"),
        database_url=asyncpg_to_sqlalchemy(postgres_dsn),
        rate_limit_register=100_000,  # every test signs up accounts of its own from one address
        rate_limit_login=100_000,
    )
    async with running_app(settings) as c:
        yield c


async def signed_in(client: GraphQLClient, email: str | None = None) -> tuple[str, str]:
    """(user id, access token) of a new account."""
    auth = await register_user(client, email or f"u-{uuid.uuid4().hex[:10]}@example.com", PASSWORD)
    return auth["user"]["id"], auth["accessToken"]


async def create(client: GraphQLClient, token: str, **input: Any) -> dict[str, Any]:
    values = {"name": "ci", "scopes": ["read"], **input}
    body = await client.execute(CREATE, {"input": values}, token=token, expect_errors=True)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["createApiKey"]
    return result


async def new_key(client: GraphQLClient, token: str, scopes: list[str] | None = None) -> tuple[str, str]:
    """(key id, the whole key)."""
    made = await create(client, token, scopes=scopes or ["read"])
    assert made["__typename"] == "CreateApiKeySuccess", made
    return made["apiKey"]["id"], made["key"]


# ------------------------------------------------------------------ the happy path


async def test_a_key_is_shown_once_listed_without_its_secret_and_works_until_revoked(client: GraphQLClient) -> None:
    # given a user who creates a key
    user_id, token = await signed_in(client)
    made = await create(client, token, name="  deploy bot ", scopes=["read", "generate"])
    key, listed = made["key"], made["apiKey"]
    assert key.startswith(listed["prefix"] + "_") and listed["prefix"].startswith("ghk_")
    assert listed["name"] == "deploy bot" and listed["scopes"] == ["generate", "read"]
    # then the list shows it, never its secret
    keys = (await client.execute(LIST, token=token))["data"]["apiKeys"]
    assert [k["id"] for k in keys] == [listed["id"]]
    assert key.split("_")[-1] not in str(keys)
    # and the key authenticates as its owner
    assert (await client.execute(ME, token=key))["data"]["me"]["id"] == user_id
    # when it is revoked
    revoked = (await client.execute(REVOKE, {"id": listed["id"]}, token=token))["data"]["revokeApiKey"]
    assert revoked["__typename"] == "RevokeApiKeySuccess" and revoked["changed"] is True
    # then it is refused at once, with the one message every bad key gets
    body = await client.execute(ME, token=key, expect_errors=True)
    assert codes(body) == ["UNAUTHENTICATED"] and messages(body) == [INVALID_KEY]


@pytest.mark.parametrize("on", ["postgres", "sqlite"])
async def test_a_new_keys_first_request_with_several_root_fields_answers_them_all(
    on: str, client: GraphQLClient, sqlite_client: GraphQLClient
) -> None:
    # the root fields run concurrently: each must wait for the one verification of the key
    app = client if on == "postgres" else sqlite_client
    _, token = await signed_in(app)
    _, key = await new_key(app, token)
    body = await app.execute("{ me { id } credits { available } models { id } }", token=key)
    assert body["data"]["me"]["id"] and body["data"]["credits"] is not None


async def test_the_secret_is_stored_only_as_its_hash(client: GraphQLClient) -> None:
    _, token = await signed_in(client)
    _, key = await new_key(client, token)
    async with client.container.engine.connect() as conn:
        from sqlalchemy import text

        lookup = key.split("_")[1]
        rows = (await conn.execute(text("SELECT secret_hash FROM api_keys WHERE lookup_id = :l"), {"l": lookup})).all()
    [(stored,)] = rows
    secret = key.split("_", 2)[2]
    assert secret not in stored and len(stored) == 64


async def test_malformed_unknown_expired_and_wrong_secret_keys_read_the_same(client: GraphQLClient) -> None:
    # given a live key, one that expires in a moment, and keys that are not quite it
    _, token = await signed_in(client)
    _, key = await new_key(client, token)
    expiring = await create(client, token, expiresAt=(datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    prefix, lookup, secret = key.split("_", 2)
    other_secret = ("A" if secret[0] != "A" else "B") + secret[1:]
    unknown_lookup = ("0" if lookup[0] != "0" else "1") + lookup[1:]
    bad = [
        "ghk_",
        "ghk_nothing",
        f"{prefix}_{lookup}_{other_secret}",
        f"{prefix}_{unknown_lookup}_{secret}",
        f"{prefix}_{lookup}_{secret}x",
    ]
    await eventually(lambda: datetime.now(UTC) > datetime.fromisoformat(expiring["apiKey"]["expiresAt"]), what="expiry")
    bad.append(expiring["key"])
    # then each answers UNAUTHENTICATED with the same message, on a public field too
    for candidate in bad:
        for query in (ME, MODELS):
            body = await client.execute(query, token=candidate, expect_errors=True)
            assert codes(body) == ["UNAUTHENTICATED"], (candidate, body)
            assert messages(body) == [INVALID_KEY], (candidate, body)


# ------------------------------------------------------------------ scopes


async def test_scopes_restrict_the_key_and_session_only_fields_refuse_every_key(client: GraphQLClient) -> None:
    # given a key that may only read
    _, token = await signed_in(client)
    _, key = await new_key(client, token, ["read"])
    # then it reads, but cannot generate
    assert "errors" not in await client.execute(ME, token=key)
    body = await client.execute(GENERATE, token=key, expect_errors=True)
    assert codes(body) == ["FORBIDDEN"] and "generate" in messages(body)[0]
    # and no key, whatever its scopes, changes the password, mints keys or signs out
    _, every = await new_key(client, token, ["read", "generate", "upload"])
    for document, variables in (
        (CHANGE_PASSWORD, {"c": PASSWORD, "n": "another good password"}),
        (CREATE, {"input": {"name": "x", "scopes": ["read"]}}),
        (LIST, {}),
        (LOGOUT_EVERYWHERE, {}),
        (DELETE_ACCOUNT, {"p": PASSWORD}),
    ):
        body = await client.execute(document, variables, token=every, expect_errors=True)
        assert codes(body) == ["FORBIDDEN"], (document, body)
    # while a key with the scope may generate (the model does not exist: the resolver ran)
    body = await client.execute(GENERATE, token=every)
    assert body["data"]["generate"]["__typename"] == "NotFound"


async def test_admin_scopes_are_for_an_administrators_keys_only(client: GraphQLClient) -> None:
    _, token = await signed_in(client)
    refused = await create(client, token, scopes=["read", "admin:read"])
    assert refused["__typename"] == "InvalidInput" and [f["field"] for f in refused["fields"]] == ["scopes"]
    # an administrator's key with admin:read reads the audit log; with read only it may not
    admin = await admin_token(client)
    _, admin_key = await new_key(client, admin, ["admin:read"])
    assert "errors" not in await client.execute(AUDIT, token=admin_key)
    _, plain_key = await new_key(client, admin, ["read"])
    assert codes(await client.execute(AUDIT, token=plain_key, expect_errors=True)) == ["FORBIDDEN"]


# ------------------------------------------------------------------ unhappy paths of the mutations


async def test_someone_elses_key_and_a_missing_one_are_not_found(client: GraphQLClient) -> None:
    _, alice = await signed_in(client)
    _, bob = await signed_in(client)
    key_id, key = await new_key(client, alice)
    for candidate in (key_id, str(uuid.uuid4()), "not-a-uuid"):
        body = await client.execute(REVOKE, {"id": candidate}, token=bob)
        assert body["data"]["revokeApiKey"]["__typename"] == "NotFound", body
    # Alice's key still works; Bob's list is empty; Bob may not list Alice's
    assert "errors" not in await client.execute(ME, token=key)
    assert (await client.execute(LIST, token=bob))["data"]["apiKeys"] == []
    alice_id = (await client.execute(ME, token=alice))["data"]["me"]["id"]
    assert codes(await client.execute(LIST, {"userId": alice_id}, token=bob, expect_errors=True)) == ["FORBIDDEN"]
    forbidden = await create(client, bob, userId=alice_id)
    assert forbidden["__typename"] == "Forbidden"


@pytest.mark.parametrize(
    ("input", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["read", "root"]}, "scopes"),
        ({"scopes": ["READ"]}, "scopes"),
        ({"expiresAt": "2020-01-01T00:00:00+00:00"}, "expiresAt"),
        ({"expiresAt": "2030-01-01T00:00:00"}, "expiresAt"),  # no time zone
        ({"expiresAt": "2030-01-01"}, "expiresAt"),
    ],
)
async def test_malformed_input_is_invalid_input_by_field(
    client: GraphQLClient, input: dict[str, Any], field: str
) -> None:
    _, token = await signed_in(client)
    result = await create(client, token, **input)
    assert result["__typename"] == "InvalidInput" and field in [f["field"] for f in result["fields"]], result
    assert (await client.execute(LIST, token=token))["data"]["apiKeys"] == []


async def test_revoking_twice_is_success_unchanged(client: GraphQLClient) -> None:
    _, token = await signed_in(client)
    key_id, _ = await new_key(client, token)
    first = (await client.execute(REVOKE, {"id": key_id}, token=token))["data"]["revokeApiKey"]
    second = (await client.execute(REVOKE, {"id": key_id}, token=token))["data"]["revokeApiKey"]
    assert (first["changed"], second["changed"]) == (True, False)
    assert first["apiKey"]["revokedAt"] == second["apiKey"]["revokedAt"]


async def test_the_cap_holds_under_concurrent_creates_and_revoking_frees_a_place(client: GraphQLClient) -> None:
    # given an account one key short of the cap
    _, token = await signed_in(client)
    ids = [(await new_key(client, token))[0] for _ in range(MAX_KEYS_PER_USER - 1)]
    # when several creates race for the last place
    results = await asyncio.gather(*(create(client, token, name=f"racer {i}") for i in range(6)))
    # then exactly one gets it; the others are told the limit
    kinds = sorted(r["__typename"] for r in results)
    assert kinds == ["CreateApiKeySuccess"] + ["QuotaExceeded"] * 5, kinds
    assert {r["limit"] for r in results if r["__typename"] == "QuotaExceeded"} == {MAX_KEYS_PER_USER}
    # and a revoked key frees its place
    await client.execute(REVOKE, {"id": ids[0]}, token=token)
    assert (await create(client, token))["__typename"] == "CreateApiKeySuccess"


# ------------------------------------------------------------------ what ends a key, and what does not


async def test_a_password_change_and_signing_out_everywhere_leave_keys_working(client: GraphQLClient) -> None:
    _, token = await signed_in(client)
    _, key = await new_key(client, token)
    changed = await client.execute(CHANGE_PASSWORD, {"c": PASSWORD, "n": "another good password"}, token=token)
    new_token = changed["data"]["changePassword"]["accessToken"]
    await client.execute(LOGOUT_EVERYWHERE, token=new_token)
    assert codes(await client.execute(ME, token=new_token, expect_errors=True)) == ["UNAUTHENTICATED"]
    assert "errors" not in await client.execute(ME, token=key)


async def test_a_suspended_accounts_keys_stop_and_a_deleted_accounts_keys_are_revoked(client: GraphQLClient) -> None:
    admin = await admin_token(client)
    suspended_id, suspended_token = await signed_in(client)
    _, suspended_key = await new_key(client, suspended_token)
    _, deleted_token = await signed_in(client)
    deleted_key_id, deleted_key = await new_key(client, deleted_token)
    assert "errors" not in await client.execute(ME, token=suspended_key)
    assert "errors" not in await client.execute(ME, token=deleted_key)
    # when one account is suspended and the other deleted
    await client.execute(SUSPEND, {"id": suspended_id}, token=admin)
    await client.execute(DELETE_ACCOUNT, {"p": PASSWORD}, token=deleted_token)
    # then neither key works
    assert codes(await client.execute(ME, token=suspended_key, expect_errors=True)) == ["UNAUTHENTICATED"]
    assert codes(await client.execute(ME, token=deleted_key, expect_errors=True)) == ["UNAUTHENTICATED"]
    # and the deleted account's key is revoked in the database
    async with client.container.uow() as uow:
        stored = await uow.api_keys.get(uuid.UUID(deleted_key_id))
    assert stored is not None and stored.revoked_at is not None


# ------------------------------------------------------------------ administrators


async def test_an_admin_manages_another_users_keys_audited(client: GraphQLClient) -> None:
    admin = await admin_token(client)
    user_id, token = await signed_in(client)
    made = await create(client, admin, userId=user_id, name="for the user")
    assert made["__typename"] == "CreateApiKeySuccess"
    assert (await client.execute(ME, token=made["key"]))["data"]["me"]["id"] == user_id
    listed = (await client.execute(LIST, {"userId": user_id}, token=admin))["data"]["apiKeys"]
    assert [k["id"] for k in listed] == [made["apiKey"]["id"]]
    assert [k["id"] for k in (await client.execute(LIST, token=token))["data"]["apiKeys"]] == [made["apiKey"]["id"]]
    revoked = (await client.execute(REVOKE, {"id": made["apiKey"]["id"]}, token=admin))["data"]["revokeApiKey"]
    assert revoked["changed"] is True
    missing = await client.execute(REVOKE, {"id": "nope"}, token=admin)
    assert missing["data"]["revokeApiKey"]["__typename"] == "NotFound"
    # every action on another user's keys is in the audit log, the refused one too
    created = (await client.execute(AUDIT, {"action": "CREATE_API_KEY"}, token=admin))["data"]["auditLog"]["edges"]
    assert [(e["node"]["outcome"], e["node"]["targetUserId"]) for e in created] == [("APPLIED", user_id)]
    revokes = (await client.execute(AUDIT, {"action": "REVOKE_API_KEY"}, token=admin))["data"]["auditLog"]["edges"]
    assert sorted(e["node"]["outcome"] for e in revokes) == ["APPLIED", "REFUSED"]


# ------------------------------------------------------------------ per-process memo and lastUsedAt


@pytest.mark.parametrize("on", ["postgres", "sqlite"])
async def test_keys_are_verified_from_memory_and_last_use_is_written_in_batches(
    on: str, client: GraphQLClient, sqlite_client: GraphQLClient
) -> None:
    client = client if on == "postgres" else sqlite_client
    _, token = await signed_in(client)
    key_id, key = await new_key(client, token)
    gate = client.container.api_key_gate
    await client.execute(ME, token=key)
    reads = gate.reads
    for _ in range(5):
        await client.execute(ME, token=key)
    assert gate.reads == reads  # remembered: no read per request
    # an unknown key is read once, then remembered as unknown
    unknown = f"ghk_{uuid.uuid4().hex[:16]}_" + "A" * 43
    for _ in range(3):
        await client.execute(ME, token=unknown, expect_errors=True)
    assert gate.reads == reads + 1
    # lastUsedAt is written by the flusher, not by the requests
    assert (await client.execute(LIST, token=token))["data"]["apiKeys"][0]["lastUsedAt"] is None
    await client.container.api_key_usage.flush()
    [listed] = (await client.execute(LIST, token=token))["data"]["apiKeys"]
    assert listed["id"] == key_id and listed["lastUsedAt"] is not None


async def test_a_failed_last_used_write_keeps_the_moments_for_the_next_flush(
    client: GraphQLClient, postgres_dsn: str
) -> None:
    # given a key used once (its moment is in the process's buffer)
    _, token = await signed_in(client)
    key_id, key = await new_key(client, token)
    await client.execute(ME, token=key)
    # when a flush cannot write: its database does not exist (a real connection, refused by the server)
    gone = create_async_engine(asyncpg_to_sqlalchemy(postgres_dsn).rsplit("/", 1)[0] + "/genhub_no_such_database")
    try:
        failing = LastUsedFlusher(
            client.container.api_key_gate, SqlUnitOfWorkFactory(create_session_factory(gone)), interval_seconds=60
        )
        await failing.flush()
    finally:
        await gone.dispose()
    assert failing.flushes == 0
    assert (await client.execute(LIST, token=token))["data"]["apiKeys"][0]["lastUsedAt"] is None
    # then the moments were put back: the next flush writes them
    await client.container.api_key_usage.flush()
    [listed] = (await client.execute(LIST, token=token))["data"]["apiKeys"]
    assert listed["id"] == key_id and listed["lastUsedAt"] is not None


async def test_a_flood_of_invented_keys_is_throttled_per_address(tmp_path: Path) -> None:
    async with running_app(app_settings(tmp_path, rate_limit_api_key_lookups=3)) as client:
        gate = client.container.api_key_gate
        answers = []
        for i in range(8):
            body = await client.execute(ME, token=f"ghk_{i:016x}_" + "B" * 43, expect_errors=True)
            answers.append(codes(body)[0])
        assert answers[:3] == ["UNAUTHENTICATED"] * 3
        assert set(answers[3:]) == {"RATE_LIMITED"}
        assert gate.reads == 3


# ------------------------------------------------------------------ WebSocket


async def test_a_key_opens_a_websocket_and_its_revocation_closes_it(client: GraphQLClient) -> None:
    _, token = await signed_in(client)
    key_id, key = await new_key(client, token)
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": CREDITS}})
        await eventually(lambda: client.container.access_gate.watched() >= 1, what="the connection watched")
        await client.execute(REVOKE, {"id": key_id}, token=token)
        with pytest.raises(WebSocketClosed) as closed:
            while True:
                await ws.receive_json()
    assert closed.value.code == 4401


async def test_a_key_in_the_upgrade_header_works_until_it_expires_then_the_connection_closes(
    sqlite_client: GraphQLClient,
) -> None:
    # given a key that expires in two seconds, sent in the upgrade request's header (legacy graphql-ws)
    client = sqlite_client
    _, token = await signed_in(client)
    expires = datetime.now(UTC) + timedelta(seconds=2)
    made = await create(client, token, expiresAt=expires.isoformat())
    headers = {"Authorization": f"Bearer {made['key']}"}
    async with AsgiWebSocket(client.app, subprotocols=("graphql-ws",), headers=headers) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "start", "payload": {"query": CREDITS}})
        # then the connection is closed with 4401 when the key expires
        with pytest.raises(WebSocketClosed) as closed:
            while True:
                await ws.receive_json()
    assert closed.value.code == 4401
    assert datetime.now(UTC) >= expires


async def test_a_bad_key_is_refused_at_connection_init(client: GraphQLClient) -> None:
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": "Bearer ghk_" + "1" * 16 + "_" + "C" * 43}}
        )
        with pytest.raises(WebSocketClosed) as closed:
            await ws.receive_json()
    assert closed.value.code == 4401


# ------------------------------------------------------------------ hostile Authorization headers

HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)


@st.composite
def authorization_values(draw: st.DrawFn) -> str:
    """Whatever a client may put in the header: junk, a Bearer of junk, things shaped almost like keys or JWTs."""
    hex16 = st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)
    b64 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=0, max_size=50)
    body = draw(
        st.one_of(
            HEADER_TEXT,
            st.builds(lambda t: "ghk_" + t, HEADER_TEXT),
            st.builds(lambda h, s: f"ghk_{h}_{s}", hex16, b64),
            st.builds(lambda x, y, z: f"{x}.{y}.{z}", b64, b64, b64),
        )
    )
    scheme = draw(st.sampled_from(["Bearer ", "bearer ", "BEARER  ", "Basic ", "", "Bearer"]))
    return scheme + body


@pytest.fixture(scope="module")
async def sqlite_client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    settings = app_settings(tmp_path_factory.mktemp("keys"), rate_limit_api_key_lookups=100_000)
    async with running_app(settings) as c:
        yield c


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=authorization_values())
async def test_any_authorization_header_is_anonymous_or_unauthenticated_never_an_error(
    sqlite_client: GraphQLClient, value: str
) -> None:
    response = await sqlite_client.http.post("/graphql", json={"query": ME}, headers={"Authorization": value})
    assert response.status_code == 200, response.text
    body = response.json()
    if body.get("errors"):
        assert codes(body) == ["UNAUTHENTICATED"], (value, body)
        token = bearer_token({"authorization": value}) or ""
        if token.startswith("ghk_"):  # meant as a key: the one message of every bad key
            assert messages(body) == [INVALID_KEY], (value, body)
    else:
        assert body["data"] == {"me": None}, (value, body)  # no token at all
