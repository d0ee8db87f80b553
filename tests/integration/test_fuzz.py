"""Fuzzing the GraphQL endpoint: random valid and invalid documents, variables and bodies.

Whatever arrives, the server answers with a 4xx or a GraphQL result, never a 5xx, never a
traceback, and (for anything a client can send) never an INTERNAL_SERVER_ERROR: an
unexpected error on client input is a bug, even when masked. Valid documents come from
hypothesis-graphql when it is installed, the invalid ones from our own strategies.
"""

from __future__ import annotations

import json
import string
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.schema import build_schema
from infrastructure.security.passwords import Argon2PasswordHasher
from tests.fixtures.app import GraphQLClient, app_settings, register_user, running_app

SCHEMA = build_schema().graphql_schema
ALLOWED_STATUS = {200, 400, 405, 406, 413, 415}
LEAKS = ("Traceback", 'File "', "INTERNAL_SERVER_ERROR", "sqlalchemy", "asyncpg", "Exception")
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    config = app_settings(
        tmp_path_factory.mktemp("fuzz"), simulated_mode="hang", rate_limit_register=100_000, rate_limit_login=100_000
    )
    async with running_app(config) as c:
        # Generated documents call register/login a lot: a cheap argon2 keeps the fuzzing fast.
        c.rebind(hasher=Argon2PasswordHasher(time_cost=1, memory_cost=1024))
        session = await register_user(c, "fuzzer@example.com")
        c.token = session["accessToken"]
        yield c


def check(status: int, text: str) -> None:
    assert status in ALLOWED_STATUS, (status, text[:2000])
    for leak in LEAKS:
        assert leak not in text, (leak, text[:2000])
    json.loads(text)  # always a JSON body


async def post(client: GraphQLClient, body: Any, *, signed_in: bool, raw: bytes | None = None) -> None:
    headers = {"Authorization": f"Bearer {client.token}"} if signed_in else {}
    if raw is not None:
        response = await client.http.post(
            "/graphql", content=raw, headers={**headers, "content-type": "application/json"}
        )
    else:
        response = await client.http.post("/graphql", json=body, headers=headers)
    check(response.status_code, response.text)


# ---------------------------------------------------------------- strategies

FIELD_NAMES = sorted(
    {
        name
        for t in SCHEMA.type_map.values()
        if hasattr(t, "fields") and not t.name.startswith("__")
        for name in t.fields
    }  # type: ignore[union-attr]
)
TYPE_NAMES = sorted(name for name in SCHEMA.type_map if not name.startswith("__"))
PUNCTUATION = ["{", "}", "(", ")", ":", "...", "$", "@", "!", "=", "[", "]", "|", "&", ",", '"', '"""', "#", "\n"]
KEYWORDS = ["query", "mutation", "subscription", "fragment", "on", "true", "false", "null", "__schema", "__typename",
            "__type", "@skip", "@include", "@defer", "@stream", "input", "type"]  # fmt: skip
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
token_soup = st.lists(
    st.sampled_from(PUNCTUATION + KEYWORDS + FIELD_NAMES + TYPE_NAMES)
    | st.integers(-(2**64), 2**64).map(str)
    | st.text(string.ascii_letters, min_size=1, max_size=8),
    max_size=60,
).map(" ".join)
ROOTS = [
    "me",
    "credits",
    "models",
    "boards",
    "generations(first: 5) { edges { node { id } } }",
    "chunks { edges { node { id } } }",
]


@st.composite
def mutated_document(draw: st.DrawFn) -> str:
    """A valid-looking document with random edits: cut, duplicated or swapped characters."""
    base = "query Q($id: ID!, $n: Int) { " + " ".join(draw(st.lists(st.sampled_from(ROOTS), min_size=1, max_size=3)))
    base += " generation(id: $id) { id status board { id members { role } } } }"
    chars = list(base)
    for _ in range(draw(st.integers(0, 6))):
        if not chars:
            break
        i = draw(st.integers(0, len(chars) - 1))
        action = draw(st.sampled_from(["cut", "dup", "swap", "insert"]))
        if action == "cut":
            del chars[i]
        elif action == "dup":
            chars.insert(i, chars[i])
        elif action == "swap" and i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            chars.insert(i, draw(st.sampled_from(PUNCTUATION)))
    return "".join(chars)


documents = st.one_of(st.text(max_size=200), token_soup, mutated_document())
bodies = st.fixed_dictionaries(
    {"query": documents | JSONISH},
    optional={"variables": JSONISH, "operationName": st.none() | st.text(max_size=10) | JSONISH, "extensions": JSONISH},
)


# ---------------------------------------------------------------- the tests


@FUZZ
@given(body=bodies, signed_in=st.booleans())
async def test_random_documents_and_variables(client: GraphQLClient, body: dict[str, Any], signed_in: bool) -> None:
    await post(client, body, signed_in=signed_in)


@FUZZ
@given(
    variables=st.dictionaries(st.sampled_from(["id", "n", "first", "after", "input", "x"]), JSONISH, max_size=4),
    document=st.sampled_from(
        [
            "query Q($id: ID!) { generation(id: $id) { id } }",
            "query Q($n: Int, $after: String) { generations(first: $n, after: $after) { edges { cursor } } }",
            "query Q($first: Int!) { chunks(first: $first) { pageInfo { hasNextPage } } }",
            "mutation M($input: GenerateInput!) { generate(input: $input) { __typename } }",
            "mutation M($input: CreateBoardInput!) { createBoard(input: $input) { __typename } }",
            "mutation M($input: AddBoardMemberInput!) { addBoardMember(input: $input) { __typename } }",
            "mutation M($input: RequestChunkUploadInput!) { requestChunkUpload(input: $input) { __typename } }",
            'mutation M($x: JSON!) { setAdminSetting(key: "k", value: $x) { __typename } }',
        ]
    ),
)
async def test_random_variables_for_real_operations(
    client: GraphQLClient, document: str, variables: dict[str, Any]
) -> None:
    await post(client, {"query": document, "variables": variables}, signed_in=True)


@FUZZ
@given(
    raw=st.binary(max_size=300)
    | st.lists(JSONISH, max_size=12).map(lambda v: json.dumps(v).encode())
    | st.sampled_from(
        [
            b'{"query": "query Q($x: JSON!) { __typename }", "variables": {"x": NaN}}',
            b'{"query": "{ me { id } }", "variables": {"x": Infinity}}',
            b'{"query": "mutation M($x: JSON!) { setAdminSetting(key: \\"k\\", value: $x) { __typename } }",'
            b' "variables": {"x": -Infinity}}',
            b'{"query": "{ me { id } }"' + b', "a": [' * 5000,
            b"[" * 10000 + b"]" * 10000,
        ]
    )
)
async def test_random_bodies(client: GraphQLClient, raw: bytes) -> None:
    await post(client, None, signed_in=False, raw=raw)


@FUZZ
@given(query=documents, variables=st.none() | st.text(max_size=40))
async def test_random_get_requests(client: GraphQLClient, query: str, variables: str | None) -> None:
    params = {"query": query, **({"variables": variables} if variables is not None else {})}
    response = await client.http.get("/graphql", params=params, headers={"accept": "application/json"})
    check(response.status_code, response.text)


# ---------------------------------------------------------------- valid documents from the schema (hypothesis-graphql)


def graphql_strategies() -> tuple[Any, Any] | None:
    """Valid and invalid documents generated from our SDL, or None without hypothesis-graphql."""
    try:
        from hypothesis_graphql import nodes
        from hypothesis_graphql import strategies as gql
    except ImportError:
        return None
    json_values = st.recursive(
        st.integers(-1000, 1000).map(nodes.Int)
        | st.text(max_size=10).map(nodes.String)
        | st.booleans().map(nodes.Boolean),
        lambda inner: st.lists(inner, max_size=3).map(nodes.List),
        max_leaves=6,
    )
    scalars = {
        "JSON": json_values,
        "DateTime": st.datetimes().map(lambda d: nodes.String(d.isoformat())),
        "Upload": st.text(max_size=5).map(nodes.String),
    }
    sdl = build_schema().as_str()
    return (
        gql.from_schema(sdl, custom_scalars=scalars),
        gql.from_schema(sdl, custom_scalars=scalars, mode=gql.Mode.NEGATIVE),
    )


GENERATED = graphql_strategies()
NO_GENERATOR = "hypothesis-graphql is not installed"


@pytest.mark.skipif(GENERATED is None, reason=NO_GENERATOR)
@FUZZ
@given(document=GENERATED[0] if GENERATED else st.nothing(), signed_in=st.booleans())
async def test_valid_documents_generated_from_the_schema(client: GraphQLClient, document: str, signed_in: bool) -> None:
    await post(client, {"query": document}, signed_in=signed_in)


@pytest.mark.skipif(GENERATED is None, reason=NO_GENERATOR)
@FUZZ
@given(document=GENERATED[1] if GENERATED else st.nothing(), signed_in=st.booleans())
async def test_invalid_documents_generated_from_the_schema(
    client: GraphQLClient, document: str, signed_in: bool
) -> None:
    await post(client, {"query": document}, signed_in=signed_in)
