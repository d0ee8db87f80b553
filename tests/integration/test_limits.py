"""Query limits through the real app: depth, tokens, aliases, cost, page size, batching, introspection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from graphql import get_introspection_query

from tests.fixtures.app import GraphQLClient, SettingsFactory, app_settings, register_user, running_app

DEEP = """
query Deep {
  generations(first: 1) { edges { node { board { generations(first: 1) { edges { node { board {
    generations(first: 1) { edges { node { board { generations(first: 1) { edges { node { id } } } } } } }
  } } } } } } } }
}
"""
NESTED_PAGES = """
query Nested($outer: Int!, $inner: Int!) {
  generations(first: $outer) { edges { node { id board { generations(first: $inner) { edges { node { id } } } } } } }
}
"""
BIG_PAGE = "query Big { generations(first: 101) { edges { node { id } } } }"
ME = "query Me { me { id } }"
UNKNOWN_FRAGMENT = "query Broken { me { ...Nope } }"
CYCLIC_FRAGMENTS = "query C { me { ...A } } fragment A on User { id ...B } fragment B on User { email ...A }"


def aliases(count: int) -> str:
    return "query Aliases { " + " ".join(f"a{i}: me {{ id }}" for i in range(count)) + " }"


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    """One app for the module (SQLite), with small token and alias limits."""
    settings = app_settings(tmp_path_factory.mktemp("limits"), max_query_tokens=400, max_aliases=5)
    async with running_app(settings) as c:
        yield c


@pytest.fixture(scope="module")
async def token(client: GraphQLClient) -> str:
    session = await register_user(client, "limits@example.com")
    return str(session["accessToken"])


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code", "") for e in body.get("errors", [])]


async def test_depth_over_the_limit_is_refused(client: GraphQLClient, token: str) -> None:
    body = await client.execute(DEEP, token=token, expect_errors=True)
    assert "data" not in body
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "exceeds maximum operation depth of 12" in body["errors"][0]["message"]


async def test_token_count_over_the_limit_is_refused(client: GraphQLClient) -> None:
    query = "query Many { " + " ".join(f"f{i}: me {{ id }}" for i in range(200)) + " }"
    body = await client.execute(query, expect_errors=True)
    assert "data" not in body
    assert "more than 400 tokens" in body["errors"][0]["message"]


async def test_aliases_over_the_limit_are_refused(client: GraphQLClient) -> None:
    assert "errors" not in await client.execute(aliases(5), expect_errors=True)
    body = await client.execute(aliases(6), expect_errors=True)
    assert "6 aliases found. Allowed: 5" in body["errors"][0]["message"]


async def test_nested_pages_over_the_cost_limit_are_refused_before_any_resolver(
    client: GraphQLClient, token: str
) -> None:
    # given first: 100 nested in first: 100 (cost about 100 * 100 * 3 fields > 5000)
    body = await client.execute(NESTED_PAGES, {"outer": 100, "inner": 100}, token=token, expect_errors=True)
    # then the whole operation is refused with a clear, machine-readable error
    assert "data" not in body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["maxCost"] == 5000
    assert error["extensions"]["cost"] > 5000
    assert "first" in error["message"]


async def test_small_nested_pages_are_allowed(client: GraphQLClient, token: str) -> None:
    body = await client.execute(NESTED_PAGES, {"outer": 10, "inner": 10}, token=token)
    assert body["data"]["generations"]["edges"] == []


async def test_first_over_100_is_invalid_input(client: GraphQLClient, token: str) -> None:
    body = await client.execute(BIG_PAGE, token=token, expect_errors=True)
    assert codes(body) == ["INVALID_INPUT"]
    assert "first" in body["errors"][0]["message"]


async def test_batches_over_the_limit_are_refused(client: GraphQLClient) -> None:
    max_batch = client.app.state.settings.max_batch_size
    ok = await client.http.post("/graphql", json=[{"query": ME}] * max_batch)
    too_many = await client.http.post("/graphql", json=[{"query": ME}] * (max_batch + 1))
    assert ok.status_code == 200
    assert len(ok.json()) == max_batch
    assert too_many.status_code == 400
    assert f"at most {max_batch}" in too_many.json()["errors"][0]["message"]


async def test_graphiql_introspection_passes_every_limit_in_development(make_settings: SettingsFactory) -> None:
    # the real limits (not the module's small ones): GraphiQL must keep working
    async with running_app(make_settings()) as client:
        body = await client.execute(get_introspection_query(descriptions=True))
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_broken_fragments_are_validation_errors_not_crashes(client: GraphQLClient) -> None:
    for query in (UNKNOWN_FRAGMENT, CYCLIC_FRAGMENTS):
        body = await client.execute(query, expect_errors=True)
        assert codes(body) and set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}, body


async def test_parse_and_validation_are_cached_across_requests(client: GraphQLClient) -> None:
    plans = client.app.state.schema.plans.cached
    await client.execute(ME)
    hits, misses = plans.cache_info().hits, plans.cache_info().misses
    await client.execute(ME)
    await client.execute(ME)
    assert plans.cache_info().hits >= hits + 2  # (the HTTP layer reads the operation's type from the plan too)
    assert plans.cache_info().misses == misses


async def test_introspection_can_be_switched_off(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(introspection=False)) as client:
        body = await client.execute("query I { __schema { queryType { name } } }", expect_errors=True)
        typename = await client.execute("query T { __typename }")
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "introspection has been disabled" in body["errors"][0]["message"]
    assert typename["data"] == {"__typename": "Query"}


@pytest.mark.postgres
@pytest.mark.redis
async def test_production_turns_introspection_and_graphiql_off(
    make_settings: SettingsFactory, clean_postgres: str, clean_redis: str, tmp_path: Path
) -> None:
    # given a production configuration with nothing about introspection set
    settings = make_settings(
        environment="production",
        database_url=clean_postgres,
        redis_url=clean_redis,
        jwt_secret="a-production-secret-that-is-long-enough-0123",
        local_storage_path=tmp_path / "chunks",
        smtp_host="127.0.0.1",
        mail_from="noreply@genhub.example",
    )
    async with running_app(settings) as client:
        # when a client introspects, or asks for the IDE
        body = await client.execute(get_introspection_query(), expect_errors=True)
        page = await client.http.get("/graphql", headers={"accept": "text/html"})
        typename = await client.execute("query T { __typename }")
    # then introspection is refused (plain queries still work) and no GraphiQL is served
    assert "data" not in body
    assert "introspection has been disabled" in body["errors"][0]["message"]
    assert typename["data"] == {"__typename": "Query"}
    assert "graphiql" not in page.text.lower()
    assert page.headers["strict-transport-security"].startswith("max-age=")
