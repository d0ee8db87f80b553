"""adminUsers and adminUser on PostgreSQL: search by e-mail taken literally, credits, ledger and generations.

Hostile search text (`%`, `_`, `\\`) never widens the match (hypothesis); a page of accounts
costs the same statements whatever its length; one account shows its balance, its ledger
and its own generations, page by page.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.generations import Generation, GenerationStatus
from tests.fixtures.app import GraphQLClient, SettingsFactory, admin_token, app_settings, operator_model, running_app
from tests.fixtures.credits import grant_credits
from tests.fixtures.services import TABLES, asyncpg_to_sqlalchemy
from tests.fixtures.users import add_user
from tests.integration.statement_log import statements_of

pytestmark = pytest.mark.postgres

SEARCH = """
query Search($q: String, $first: Int, $after: String) {
  adminUsers(emailContains: $q, first: $first, after: $after) {
    edges { cursor node { id email role createdAt suspendedAt credits { balance reserved available } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
DETAILS = """
query Details($id: ID!, $first: Int, $after: String) {
  adminUser(id: $id) {
    id email role suspendedAt credits { balance reserved available }
    ledger(first: $first, after: $after) { edges { node { kind amount reason } } pageInfo { hasNextPage endCursor } }
    generations(first: $first) { edges { node { id prompt status model { slug } } } pageInfo { hasNextPage } }
  }
}
"""
#: Addresses built to trap a LIKE that does not escape: each wildcard has a look-alike that only it would match.
TRAPS = [
    "percent%sign@example.com",
    "percentXsign@example.com",
    "under_score@example.com",
    "underXscore@example.com",
    "back\\slash@example.com",
    "backslash@example.com",
    "sla/_sh@example.com",  # `/` is the escape character the statement declares
    "sla/Xsh@example.com",
    "MiXeD.Case@Example.com",
    "plain@example.org",
]
CHECKS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
async def world(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Any, str]]:
    """One app over the module's database with the trap accounts; (client, admin token)."""
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(f"TRUNCATE {TABLES} CASCADE")
    finally:
        await conn.close()
    config = app_settings(tmp_path_factory.mktemp("admin-users"), database_url=asyncpg_to_sqlalchemy(postgres_dsn))
    async with running_app(config) as client:
        for email in TRAPS:
            await add_user(client.container, email=email)
        yield client, await admin_token(client)


async def search(client: GraphQLClient, token: str, text: str | None, first: int = 100) -> list[str]:
    body = await client.execute(SEARCH, {"q": text, "first": first}, token=token)
    return [e["node"]["email"] for e in body["data"]["adminUsers"]["edges"]]


@CHECKS
@given(text=st.text(alphabet="%_\\/ .@abcdeklnoprstuxyzSX", max_size=12))
@example(text="%")
@example(text="_")
@example(text="\\")
@example(text="%sign")
@example(text="r_s")
@example(text="k\\s")
@example(text="\\\\")
@example(text="/_")
@example(text="a/")
@example(text="mixed.case@example")
async def test_hostile_search_text_matches_only_itself(world: tuple[GraphQLClient, str], text: str) -> None:
    client, token = world
    # when an admin searches with any text made of wildcards, backslashes and letters
    found = await search(client, token, text)
    # then exactly the accounts whose e-mail contains that text, literally and without case, come back
    everyone = await search(client, token, None)
    assert sorted(found) == sorted(e for e in everyone if text.lower() in e.lower()), text


async def test_a_wildcard_never_matches_its_look_alike(world: tuple[GraphQLClient, str]) -> None:
    client, token = world
    assert await search(client, token, "t%s") == ["percent%sign@example.com"]
    assert await search(client, token, "r_s") == ["under_score@example.com"]
    assert await search(client, token, "k\\s") == ["back\\slash@example.com"]
    assert await search(client, token, "MIXED.case") == ["MiXeD.Case@Example.com"]


async def test_a_search_too_long_or_a_bad_cursor_is_invalid_input(world: tuple[GraphQLClient, str]) -> None:
    client, token = world
    for variables in ({"q": "a" * 255}, {"after": "not-a-cursor"}, {"first": 101}, {"first": -1}):
        body = await client.execute(SEARCH, variables, token=token, expect_errors=True)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"], (variables, body)


async def test_accounts_page_newest_first_with_credits_in_a_fixed_number_of_statements(
    world: tuple[GraphQLClient, str],
) -> None:
    client, token = world
    # given accounts with credits, created one after another
    base = datetime(2030, 1, 1, tzinfo=UTC)
    made = [
        await add_user(client.container, email=f"paged-{i}@example.net", created_at=base + timedelta(seconds=i))
        for i in range(25)
    ]
    await grant_credits(client.container, made[0].id, 40)
    # when an admin walks them 10 at a time
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        variables = {"q": "@example.net", "first": 10, "after": after}
        page = (await client.execute(SEARCH, variables, token=token))["data"]["adminUsers"]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # then each comes once, newest first, with its credits
    assert [n["email"] for n in seen] == [f"paged-{i}@example.net" for i in reversed(range(25))]
    assert seen[-1]["credits"] == {"balance": 40, "reserved": 0, "available": 40}
    assert seen[0]["credits"] == {"balance": 0, "reserved": 0, "available": 0}
    # and a page of 2 costs the statements a page of 25 does (no statement per account)
    counts = []
    for first in (2, 25):
        with statements_of(client.container.engine) as log:
            await client.execute(SEARCH, {"q": "@example.net", "first": first}, token=token)
        counts.append(len((await log.settled()).statements))
    assert counts[0] == counts[1], counts


async def test_one_account_with_its_ledger_and_own_generations(world: tuple[GraphQLClient, str]) -> None:
    client, token = world
    # given a user with three grants and two generations of their own, and another user's generation
    c = client.container
    user = await add_user(c, email="detailed@example.com")
    other = await add_user(c, email="other-detailed@example.com")
    for amount in (5, 6, 7):
        await grant_credits(c, user.id, amount, reason=f"grant {amount}")
    model_id = uuid.UUID(await operator_model(client, slug=f"detail-{uuid.uuid4().hex[:6]}"))
    async with c.uow() as uow:
        for owner, prompt in ((user, "first"), (user, "second"), (other, "not theirs")):
            now = c.clock.now()
            await uow.generations.add(
                Generation(
                    id=uuid.uuid4(),
                    user_id=owner.id,
                    model_id=model_id,
                    prompt=prompt,
                    status=GenerationStatus.SUCCEEDED,
                    created_at=now,
                    updated_at=now,
                )
            )
        await uow.commit()
    # when an admin looks the account up, two ledger entries at a time
    body = await client.execute(DETAILS, {"id": str(user.id), "first": 2}, token=token)
    found = body["data"]["adminUser"]
    # then it has the account, its balance, the newest two ledger entries and its own generations only
    assert (found["email"], found["role"], found["suspendedAt"]) == ("detailed@example.com", "USER", None)
    assert found["credits"] == {"balance": 18, "reserved": 0, "available": 18}
    assert [e["node"]["reason"] for e in found["ledger"]["edges"]] == ["grant 7", "grant 6"]
    assert found["ledger"]["pageInfo"]["hasNextPage"]
    assert [e["node"]["prompt"] for e in found["generations"]["edges"]] == ["second", "first"]
    # and the next ledger page has the first grant
    after = found["ledger"]["pageInfo"]["endCursor"]
    rest = (await client.execute(DETAILS, {"id": str(user.id), "first": 2, "after": after}, token=token))["data"]
    assert [e["node"]["reason"] for e in rest["adminUser"]["ledger"]["edges"]] == ["grant 5"]
    # and an unknown or malformed id is null
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        assert (await client.execute(DETAILS, {"id": missing}, token=token))["data"]["adminUser"] is None


async def test_the_search_is_literal_on_sqlite_too(make_settings: SettingsFactory) -> None:
    # given the embedded default's SQLite database with the trap accounts
    async with running_app(make_settings()) as client:
        assert client.services.settings.is_sqlite
        for email in TRAPS:
            await add_user(client.container, email=email)
        token = await admin_token(client)
        everyone = await search(client, token, None)
        # when an admin searches with wildcards, backslashes and mixed case, then only literal matches come back
        for text in ("%", "_", "\\", "t%s", "r_s", "k\\s", "\\\\", "MIXED.case", "/", "%_%"):
            found = await search(client, token, text)
            assert sorted(found) == sorted(e for e in everyone if text.lower() in e.lower()), text
