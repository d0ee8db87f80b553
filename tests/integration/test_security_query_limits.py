"""Documents built to be expensive, sent to the real app over HTTP with its default limits.

Every generated fragment chain, fan-out, repetition or operation name is answered with a
typed refusal (or a normal answer when within the limits), and the plan cache judges a
document once whatever operation name comes with it. (That the judging is linear is
shown by counting fragment visits in tests/unit/test_security_document_limits.py, and
its CPU by bench/validation.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from graphql.language import Lexer, Source, TokenKind
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.document_shape import MAX_SAME_NAME
from infrastructure.settings import Settings
from tests.fixtures.app import GraphQLClient, app_settings, running_app

DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]  # the default limits, for their numbers


def token_count(query: str) -> int:
    lexer, count = Lexer(Source(query)), 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


def chain(levels: int, fan_out: int) -> str:
    fragments = ["fragment F0 on Query { me { id } }"]
    fragments += [f"fragment F{i} on Query {{ {' '.join([f'...F{i - 1}'] * fan_out)} }}" for i in range(1, levels + 1)]
    return f"query Chain {{ ...F{levels} }}\n" + "\n".join(fragments)


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(app_settings(tmp_path_factory.mktemp("query-limits"))) as c:
        yield c


async def post(client: GraphQLClient, query: str, operation_name: str | None = None) -> dict[str, Any]:
    response = await client.http.post("/graphql", json={"query": query, "operationName": operation_name})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> set[str]:
    return {e["extensions"]["code"] for e in body.get("errors") or []}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(levels=st.integers(1, 40), fan_out=st.integers(2, 12))
async def test_fragment_chains_get_a_typed_answer(client: GraphQLClient, levels: int, fan_out: int) -> None:
    spreads = levels * fan_out + 1
    query = chain(levels, fan_out)
    body = await post(client, query)
    if (
        token_count(query) > DEFAULTS.max_query_tokens
        or spreads > DEFAULTS.max_fragment_spreads
        or levels + 1 > DEFAULTS.max_fragments
    ):
        assert body.get("data") is None and codes(body) <= {"GRAPHQL_VALIDATION_FAILED", "BAD_REQUEST"}, body
    elif 2 * fan_out**levels > DEFAULTS.max_query_cost:
        assert codes(body) == {"QUERY_TOO_COSTLY"}, body
    else:  # within every limit: anonymous `me` is simply refused as unauthenticated
        assert codes(body) <= {"UNAUTHENTICATED"}, body


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(repeats=st.integers(1, 3 * MAX_SAME_NAME))
async def test_one_field_repeated_is_bounded(client: GraphQLClient, repeats: int) -> None:
    body = await post(client, "query R { " + " ".join(["__typename"] * repeats) + " }")
    if repeats > MAX_SAME_NAME:
        assert codes(body) == {"GRAPHQL_VALIDATION_FAILED"}, body
        assert f"'__typename' is selected {repeats} times" in body["errors"][0]["message"]
    else:
        assert body == {"data": {"__typename": "Query"}}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=20))
async def test_the_operation_name_never_makes_a_document_be_judged_again(
    client: GraphQLClient, names: list[str]
) -> None:
    plans = client.app.state.schema.plans.cached
    document = chain(3, 3) + "\nquery Other { __typename }"
    await post(client, document, "Other")
    misses = plans.cache_info().misses
    for name in names:
        body = await post(client, document, name)
        assert "INTERNAL_SERVER_ERROR" not in codes(body)
    assert plans.cache_info().misses == misses
    assert (await client.http.get("/health")).status_code == 200
