"""The audit log on PostgreSQL: one entry per admin action, in the change's transaction, refused ones too.

Every admin mutation, called by an admin, leaves exactly one entry (applied, unchanged or
refused) with who, what, the target, the client address and the request id; callers who
are not admins leave none. The entry and the change commit together; the table refuses
UPDATE and DELETE; the operator's catalogue apply is recorded as "cli".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.app import GraphQLClient, SettingsFactory, admin_token, register_user, running_app

pytestmark = pytest.mark.postgres

GRANT = """
mutation Grant($input: GrantCreditsInput!) {
  grantCredits(input: $input) { __typename ... on Error { code } }
}
"""
UPSERT_MODEL = """
mutation Upsert($input: UpsertModelInput!) {
  upsertModel(input: $input) { __typename ... on ModelSuccess { model { id } } ... on Error { code } }
}
"""
UPSERT_PRESET = """
mutation Preset($input: UpsertPresetInput!) {
  upsertPreset(input: $input) { __typename ... on PresetSuccess { preset { id } } ... on Error { code } }
}
"""
SET_SETTING = """
mutation Set($key: String!, $value: JSON!) {
  setAdminSetting(key: $key, value: $value) { __typename ... on Error { code } }
}
"""
SUSPEND = """
mutation Suspend($id: ID!, $reason: String!) {
  suspendUser(id: $id, reason: $reason) { __typename ... on Error { code } }
}
"""
REINSTATE = "mutation Reinstate($id: ID!) { reinstateUser(id: $id) { __typename ... on Error { code } } }"
AUDIT_LOG = """
query Audit($first: Int, $after: String, $action: AuditAction, $actorId: ID, $targetId: ID) {
  auditLog(first: $first, after: $after, action: $action, actorId: $actorId, targetId: $targetId) {
    edges { cursor node {
      id createdAt actor actorId action outcome targetId targetUserId errorCode details clientAddress requestId
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
MODEL = {"slug": "audited", "name": "Audited", "provider": "simulated", "kind": "IMAGE", "costCredits": 3}


@pytest.fixture
async def client(clean_postgres: str, make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings(database_url=clean_postgres)) as c:
        yield c


async def call(client: GraphQLClient, token: str, query: str, variables: dict[str, Any], request_id: str) -> Any:
    """One request with its own X-Request-ID; the field's result."""
    response = await client.http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )
    body = response.json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


async def entries(client: GraphQLClient, token: str, **filters: Any) -> list[dict[str, Any]]:
    body = await client.execute(AUDIT_LOG, {"first": 100, **filters}, token=token)
    return [e["node"] for e in body["data"]["auditLog"]["edges"]]


async def admin_entries(client: GraphQLClient, token: str) -> list[dict[str, Any]]:
    """Entries made through the API (the fixtures' own operator grants left out)."""
    return [e for e in await entries(client, token) if e["actor"] == "admin"]


async def test_every_admin_mutation_leaves_exactly_one_entry_applied_unchanged_or_refused(
    client: GraphQLClient,
) -> None:
    # given an admin and a user
    token = await admin_token(client)
    admin_id = (await client.execute("{ me { id } }", token=token))["data"]["me"]["id"]
    user = await register_user(client, "audited@example.com")
    user_id = user["user"]["id"]
    missing = str(uuid.uuid4())
    grant = {"userId": user_id, "amount": 5, "reason": "welcome", "idempotencyKey": "k1"}
    model_id: dict[str, str] = {}

    async def model() -> str:
        return model_id["id"]

    # when the admin calls each admin mutation: successes, replays and refusals, each with its request id
    steps: list[tuple[str, dict[str, Any], str, tuple[str, str, str | None, str | None]]] = [
        (GRANT, {"input": grant}, "GrantCreditsSuccess", ("grant_credits", "applied", user_id, None)),
        (GRANT, {"input": grant}, "GrantCreditsSuccess", ("grant_credits", "unchanged", user_id, None)),
        (
            GRANT,
            {"input": {**grant, "reason": "  "}},
            "InvalidInput",
            ("grant_credits", "refused", user_id, "INVALID_INPUT"),
        ),
        (
            GRANT,
            {"input": {**grant, "userId": missing, "idempotencyKey": None}},
            "NotFound",
            ("grant_credits", "refused", missing, "NOT_FOUND"),
        ),
        (UPSERT_MODEL, {"input": MODEL}, "ModelSuccess", ("upsert_model", "applied", "model", None)),
        (UPSERT_MODEL, {"input": MODEL}, "ModelSuccess", ("upsert_model", "unchanged", "model", None)),
        (
            UPSERT_MODEL,
            {"input": {**MODEL, "costCredits": -1}},
            "InvalidInput",
            ("upsert_model", "refused", None, "INVALID_INPUT"),
        ),
        (
            UPSERT_PRESET,
            {"input": {"modelId": missing, "name": "Fast", "params": {}}},
            "NotFound",
            ("upsert_preset", "refused", None, "NOT_FOUND"),
        ),
        (
            SET_SETTING,
            {"key": "mail.password", "value": "hunter2-secret"},
            "AdminSettingSuccess",
            ("set_admin_setting", "applied", "mail.password", None),
        ),
        (
            SET_SETTING,
            {"key": "Bad Key", "value": 1},
            "InvalidInput",
            ("set_admin_setting", "refused", "Bad Key", "INVALID_INPUT"),
        ),
        (
            SUSPEND,
            {"id": user_id, "reason": "spam"},
            "UserSuspensionSuccess",
            ("suspend_user", "applied", user_id, None),
        ),
        (
            SUSPEND,
            {"id": user_id, "reason": "spam again"},
            "UserSuspensionSuccess",
            ("suspend_user", "unchanged", user_id, None),
        ),
        (
            SUSPEND,
            {"id": admin_id, "reason": "myself"},
            "Forbidden",
            ("suspend_user", "refused", admin_id, "FORBIDDEN"),
        ),
        (SUSPEND, {"id": user_id, "reason": ""}, "InvalidInput", ("suspend_user", "refused", user_id, "INVALID_INPUT")),
        (REINSTATE, {"id": user_id}, "UserSuspensionSuccess", ("reinstate_user", "applied", user_id, None)),
        (REINSTATE, {"id": user_id}, "UserSuspensionSuccess", ("reinstate_user", "unchanged", user_id, None)),
        (REINSTATE, {"id": missing}, "NotFound", ("reinstate_user", "refused", missing, "NOT_FOUND")),
        # malformed ids, refused before the use case runs, are recorded all the same
        (
            GRANT,
            {"input": {**grant, "userId": "nope"}},
            "InvalidInput",
            ("grant_credits", "refused", "nope", "INVALID_INPUT"),
        ),
        (SUSPEND, {"id": "nope", "reason": "x"}, "NotFound", ("suspend_user", "refused", "nope", "NOT_FOUND")),
        (REINSTATE, {"id": "nope"}, "NotFound", ("reinstate_user", "refused", "nope", "NOT_FOUND")),
        (
            UPSERT_PRESET,
            {"input": {"modelId": "nope", "name": "Fast", "params": {}}},
            "InvalidInput",
            ("upsert_preset", "refused", "nope", "INVALID_INPUT"),
        ),
    ]
    for i, (query, variables, typename, (action, outcome, target, error)) in enumerate(steps):
        before = await admin_entries(client, token)
        result = await call(client, token, query, variables, request_id=f"req-{i}")
        assert result["__typename"] == typename, (i, result)
        if typename == "ModelSuccess":
            model_id["id"] = result["model"]["id"]
        # then exactly one new entry, newest first, with the right fields
        after = await admin_entries(client, token)
        assert len(after) == len(before) + 1, (i, after[: len(after) - len(before)])
        entry = after[0]
        expected_target = await model() if target == "model" else target
        assert (entry["action"], entry["outcome"], entry["targetId"], entry["errorCode"]) == (
            action.upper(),
            outcome.upper(),
            expected_target,
            error,
        ), (i, entry)
        assert (entry["actor"], entry["actorId"]) == ("admin", admin_id)
        assert (entry["clientAddress"], entry["requestId"]) == ("127.0.0.1", f"req-{i}")
        if action in ("grant_credits", "suspend_user", "reinstate_user") and error is None:
            assert entry["targetUserId"] == target
    # and the money is right: one grant of 5 (the replay and the refusals moved nothing), the ledger sums to it
    async with client.container.uow() as uow:
        balance = await uow.credits.balance(uuid.UUID(user_id))
        assert balance == await uow.credits.ledger_totals(uuid.UUID(user_id))
    assert balance.balance == 5
    # and no entry holds the setting's value (a secret) or anything like a password
    everything = json.dumps(await entries(client, token))
    assert "hunter2" not in everything and "correct horse" not in everything


async def test_callers_who_are_not_admins_are_forbidden_everywhere_and_write_no_entry(client: GraphQLClient) -> None:
    # given a plain user and an admin, and the log as it is
    admin = await admin_token(client)
    user = await register_user(client, "plain@example.com")
    token, user_id = user["accessToken"], user["user"]["id"]
    before = await entries(client, admin)
    # when the user calls every admin mutation
    for query, variables in [
        (GRANT, {"input": {"userId": user_id, "amount": 5, "reason": "me"}}),
        (UPSERT_MODEL, {"input": MODEL}),
        (UPSERT_PRESET, {"input": {"modelId": str(uuid.uuid4()), "name": "x", "params": {}}}),
        (SET_SETTING, {"key": "k", "value": 1}),
        (SUSPEND, {"id": user_id, "reason": "x"}),
        (REINSTATE, {"id": user_id}),
    ]:
        result = await call(client, token, query, variables, request_id="not-admin")
        # then each answers Forbidden
        assert result == {"__typename": "Forbidden", "code": "FORBIDDEN"}, (query, result)
    # and the admin queries are refused with the FORBIDDEN error, as adminSettings is
    for query in (
        "{ auditLog { edges { cursor } } }",
        "{ adminUsers { edges { cursor } } }",
        f'{{ adminUser(id: "{user_id}") {{ id }} }}',
    ):
        body = await client.execute(query, token=token, expect_errors=True)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
        assert not any((body["data"] or {}).values()), body  # nothing of the answer leaks
    # and a malformed id is refused as for anyone (before the role is known to matter)
    result = await call(client, token, GRANT, {"input": {"userId": "nope", "amount": 1, "reason": "x"}}, "bad-id")
    assert result["__typename"] == "InvalidInput"
    result = await call(client, token, SUSPEND, {"id": "nope", "reason": "x"}, "bad-id")
    assert result["__typename"] == "NotFound"
    # and nothing was recorded: a non-admin cannot write to the log
    assert await entries(client, admin) == before


async def test_the_entry_commits_with_the_change_or_not_at_all(client: GraphQLClient, postgres_dsn: str) -> None:
    # given an admin, a user, and an audit log that (for this test) refuses every insert
    token = await admin_token(client)
    user = await register_user(client, "atomic@example.com")
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(
            "CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()"
        )
        # when the admin grants credits and suspends the user
        grant = {"input": {"userId": user["user"]["id"], "amount": 7, "reason": "atomic"}}
        body = await client.execute(GRANT, grant, token=token, expect_errors=True)
        assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR", body
        body = await client.execute(SUSPEND, {"id": user["user"]["id"], "reason": "x"}, token=token, expect_errors=True)
        assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR", body
        # then neither change was made: no ledger row, no credits, the account not suspended
        user_id = uuid.UUID(user["user"]["id"])
        assert await conn.fetchval("SELECT count(*) FROM credit_ledger WHERE user_id = $1", user_id) == 0
        assert await conn.fetchval("SELECT suspended_at FROM users WHERE id = $1", user_id) is None
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0
    finally:
        await conn.execute("DROP TRIGGER IF EXISTS test_refuse_audit ON audit_log")
        await conn.execute("DROP FUNCTION IF EXISTS test_refuse_audit()")
        await conn.close()
    # and with the log writable again, the same grant is made and recorded together
    await client.execute(GRANT, grant, token=token)
    assert [e["action"] for e in await admin_entries(client, token)] == ["GRANT_CREDITS"]


async def test_the_log_refuses_update_and_delete(client: GraphQLClient, postgres_dsn: str) -> None:
    # given one entry
    token = await admin_token(client)
    await client.execute(SET_SETTING, {"key": "site.name", "value": "genhub"}, token=token)
    conn = await asyncpg.connect(postgres_dsn)
    try:
        # when anyone tries to rewrite or erase it in SQL, then PostgreSQL refuses
        for statement in ("UPDATE audit_log SET outcome = 'refused'", "DELETE FROM audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE outcome = 'applied'") >= 1
    finally:
        await conn.close()


async def test_the_log_pages_newest_first_and_filters(client: GraphQLClient) -> None:
    # given an admin who made 7 entries on two targets, one of them refused
    token = await admin_token(client)
    admin_id = (await client.execute("{ me { id } }", token=token))["data"]["me"]["id"]
    for i in range(5):
        await client.execute(SET_SETTING, {"key": "a.key", "value": i}, token=token)
    await client.execute(SET_SETTING, {"key": "b.key", "value": 1}, token=token)
    await client.execute(SET_SETTING, {"key": "B!", "value": 1}, token=token)
    # when the log is read 3 at a time
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await client.execute(AUDIT_LOG, {"first": 3, "after": after}, token=token))["data"]["auditLog"]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # then every entry comes once, newest first
    mine = [e for e in seen if e["actorId"] == admin_id]
    assert [e["targetId"] for e in mine] == ["B!", "b.key", *["a.key"] * 5]
    assert len({e["id"] for e in seen}) == len(seen)
    assert [e["createdAt"] for e in seen] == sorted((e["createdAt"] for e in seen), reverse=True)
    # and the filters narrow it: by target, by actor, by action (and a malformed actor id names nobody)
    assert len(await entries(client, token, targetId="a.key")) == 5
    assert len(await entries(client, token, actorId=admin_id)) == 7
    assert len(await entries(client, token, action="SET_ADMIN_SETTING", targetId="B!")) == 1
    assert await entries(client, token, action="SUSPEND_USER") == []
    assert await entries(client, token, actorId="not-a-uuid") == []
    assert await entries(client, token, actorId=str(uuid.uuid4())) == []


async def test_the_operators_catalogue_apply_is_recorded_as_cli(client: GraphQLClient) -> None:
    # given the catalogue file the operator applies (the CLI's bound use case)
    model = {"slug": "cli-model", "name": "CLI", "provider": "simulated", "kind": "image", "costCredits": 1}
    document = {"version": 1, "models": [model]}
    services = client.services
    # when it is dry-run, applied, and applied again (nothing left to change)
    await services.catalogue.apply_document(document, dry_run=True, prune=False)
    await services.catalogue.apply_document(document, dry_run=False, prune=False)
    await services.catalogue.apply_document(document, dry_run=False, prune=False)
    # then one entry: the apply that wrote, by the operator
    token = await admin_token(client)
    [entry] = await entries(client, token, action="APPLY_CATALOGUE")
    assert (entry["actor"], entry["actorId"], entry["outcome"], entry["clientAddress"]) == (
        "cli",
        None,
        "APPLIED",
        None,
    )
    assert entry["details"]["models_create"] == 1


async def test_hostile_origins_and_details_are_stored_clipped(client: GraphQLClient) -> None:
    # given an admin behind a client that sends a long request id and a long setting key
    token = await admin_token(client)
    key = "k" * 128
    result = await call(client, token, SET_SETTING, {"key": key, "value": {"x": "y" * 5000}}, request_id="r" * 64)
    assert result["__typename"] == "AdminSettingSuccess"
    refused = await call(client, token, SET_SETTING, {"key": "\u202e" * 300, "value": 1}, request_id="r2")
    assert refused["__typename"] == "InvalidInput"
    # then both are recorded, the key within its column and the value's size only
    log = await admin_entries(client, token)
    assert [e["outcome"] for e in log] == ["REFUSED", "APPLIED"]
    assert log[1]["details"]["valueBytes"] > 5000 and "y" * 10 not in json.dumps(log[1])
    assert len(log[0]["targetId"]) == 100 and len(log[0]["details"]["key"]) == 200


HOSTILE = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
async def admin_and_target(client: GraphQLClient) -> tuple[str, str]:
    """An admin's token and a user's id, signed in once (sign-ins are rate-limited)."""
    user_id: str = (await register_user(client, "hostile-reason@example.com"))["user"]["id"]
    return await admin_token(client), user_id


@HOSTILE
@given(reason=st.text(max_size=600) | st.sampled_from(["\x00", "a\x00b", " " * 600, "\u202e" * 501, "%_\\'\";--"]))
async def test_any_reason_is_answered_by_type_and_recorded_once(
    client: GraphQLClient, admin_and_target: tuple[str, str], reason: str
) -> None:
    # given an admin and a user (the examples share them)
    token, target = admin_and_target
    before = len(await admin_entries(client, token))
    # when the admin suspends the user with any reason text
    body = await client.execute(SUSPEND, {"id": target, "reason": reason}, token=token, expect_errors=True)
    result = body["data"]["suspendUser"]
    # then the answer is a type: success for 1-500 characters that are not all spaces, else InvalidInput
    valid = 0 < len(reason.strip()) <= 500 and "\x00" not in reason
    assert result["__typename"] == ("UserSuspensionSuccess" if valid else "InvalidInput"), (reason, result)
    # and one entry was recorded, clipped; except for text the API refuses before any field runs (NUL)
    after = await admin_entries(client, token)
    assert len(after) == before + (0 if "\x00" in reason else 1)
    if "\x00" not in reason:
        assert len(after[0]["details"]["reason"]) <= 200 and after[0]["targetId"] == target
