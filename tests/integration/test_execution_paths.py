"""Cached operation plans and strawberry's extension path answer every operation the same way.

HTTP queries and mutations run from cached plans (graph/execution.py); subscriptions, and
everything when tracing is on, take strawberry's extension path. Both apply the same
limits and error policy: here one schema of each kind executes the same operations, on
the real app's container, and the results must be identical.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from graph.context import Context, Credentials
from graph.execution import MAX_CACHED_QUERY
from graph.limits import query_limits
from graph.schema import GenhubSchema, build_schema
from tests.fixtures.app import GraphQLClient, app_settings, register_user, running_app
from tests.integration.test_limits import BIG_PAGE, CYCLIC_FRAGMENTS, DEEP, NESTED_PAGES, UNKNOWN_FRAGMENT, aliases


def chain(levels: int, fan_out: int, leaf: str = "me { id }") -> str:
    """Fragment i spreads fragment i-1 `fan_out` times: the expansion has fan_out**levels leaves."""
    fragments = [f"fragment F0 on Query {{ {leaf} }}"]
    fragments += [f"fragment F{i} on Query {{ {' '.join([f'...F{i - 1}'] * fan_out)} }}" for i in range(1, levels + 1)]
    variables = "($n: Int)" if "$n" in leaf else ""
    return f"query Chain{variables} {{ ...F{levels} }}\n" + "\n".join(fragments)


class Passive(SchemaExtension):
    """An extension with no hooks: its presence alone selects strawberry's lifecycle (as tracing does)."""


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    settings = app_settings(tmp_path_factory.mktemp("paths"), max_query_tokens=400, max_aliases=5, introspection=False)
    async with running_app(settings) as c:
        yield c


@pytest.fixture(scope="module")
async def token(client: GraphQLClient) -> str:
    return str((await register_user(client, "paths@example.com"))["accessToken"])


@pytest.fixture(scope="module")
def schemas(client: GraphQLClient) -> tuple[GenhubSchema, GenhubSchema]:
    limits = query_limits(client.app.state.settings)
    planned = build_schema(limits=limits, mask_errors=True)
    extended = build_schema(limits=limits, mask_errors=True, extensions=[Passive])
    assert planned.plans is not None and extended.plans is None
    return planned, extended


def context(client: GraphQLClient, token: str | None) -> Context:
    return Context(services=client.services, credentials=Credentials(token), request_id="req-1")


def shape(result: Any) -> dict[str, Any]:
    return {"data": result.data, "errors": [e.formatted for e in result.errors or []]}


OPERATIONS: list[tuple[str, str, dict[str, Any] | None, str | None]] = [
    ("typename", "query T { __typename }", None, None),
    ("a signed-in read", "query Me { me { email } credits { balance available } }", None, None),
    ("anonymous read of a protected field", "query Me { me { email } credits { balance } }", None, None),
    ("syntax error", "query {", None, None),
    ("too many tokens", "query Many { " + " ".join(f"f{i}: me {{ id }}" for i in range(200)) + " }", None, None),
    ("too deep", DEEP, None, None),
    ("too many aliases", aliases(6), None, None),
    ("unknown field", "query U { me { nope } }", None, None),
    ("unknown fragment", UNKNOWN_FRAGMENT, None, None),
    ("cyclic fragments", CYCLIC_FRAGMENTS, None, None),
    ("too costly for its variables", NESTED_PAGES, {"outer": 100, "inner": 100}, None),
    ("cheap enough for its variables", NESTED_PAGES, {"outer": 2, "inner": 2}, None),
    ("page over 100", BIG_PAGE, None, None),
    ("introspection switched off", "query I { __schema { queryType { name } } }", None, None),
    ("bad variable type", NESTED_PAGES, {"outer": "many", "inner": 1}, None),
    ("missing variable", NESTED_PAGES, {"inner": 1}, None),
    ("operation picked by name", "query A { __typename } query B { me { id } }", None, "B"),
    ("a typed mutation failure", 'mutation { cancelGeneration(id: "nope") { __typename } }', None, None),
    # the reported stall: fragments spreading fragments multiply without being expanded
    ("a fragment chain", chain(8, 8), None, None),
    (
        "a fragment chain behind a variable page",
        chain(6, 6, "generations(first: $n) { edges { cursor } }"),
        {"n": 1},
        None,
    ),
    ("a fan-out past the token limit", chain(4, 60), None, None),
    ("a near-miss name with introspection off", "query G { generatio { id } }", None, None),
]


@pytest.mark.parametrize(
    ("query", "variables", "operation_name"), [o[1:] for o in OPERATIONS], ids=[o[0] for o in OPERATIONS]
)
async def test_both_paths_answer_alike(
    client: GraphQLClient,
    token: str,
    schemas: tuple[GenhubSchema, GenhubSchema],
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> None:
    planned, extended = schemas
    for bearer in (token, None):
        # when each path executes the operation
        results = [
            shape(
                await schema.execute(
                    query,
                    variable_values=variables,
                    context_value=context(client, bearer),
                    operation_name=operation_name,
                )
            )
            for schema in (planned, extended)
        ]
        # then they agree, errors (codes, messages, locations, request ids) included
        assert results[0] == results[1]


async def test_both_paths_raise_for_an_unknown_operation(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    for schema in schemas:
        with pytest.raises(CannotGetOperationTypeError):
            await schema.execute("query A { __typename }", operation_name="Z", context_value=context(client, None))


async def test_planned_path_refuses_an_ambiguous_document(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    # (strawberry's path would run the first operation; the HTTP layer refuses such documents before either)
    planned, _ = schemas
    with pytest.raises(CannotGetOperationTypeError):
        await planned.execute("query A { __typename } query B { __typename }", context_value=context(client, None))


async def test_both_paths_refuse_operation_types_the_caller_does_not_allow(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    for schema in schemas:
        with pytest.raises(InvalidOperationTypeError):
            await schema.execute(
                'mutation { cancelGeneration(id: "x") { __typename } }',
                context_value=context(client, None),
                allowed_operation_types={OperationType.QUERY},
            )


async def test_refused_documents_are_planned_once(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    planned, _ = schemas
    assert planned.plans is not None
    before = planned.plans.cached.cache_info()
    for _ in range(3):
        await planned.execute("query Once { me { notAField } }", context_value=context(client, None))
    after = planned.plans.cached.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 2)


async def test_the_operation_name_does_not_make_a_new_plan(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    # given one document, sent with many operation names (known and unknown)
    planned, _ = schemas
    assert planned.plans is not None
    document = "query A { __typename } query B { me { id } } " + chain(3, 3).replace("query Chain", "query C")
    names = ["A", "B", "C", *(f"Other{i}" for i in range(40))]
    before = planned.plans.cached.cache_info()
    for name in names:
        try:
            await planned.execute(document, context_value=context(client, None), operation_name=name)
        except CannotGetOperationTypeError:
            assert name.startswith("Other")
    # then the document was judged once: every other request reused its plan
    after = planned.plans.cached.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, len(names) - 1)


async def test_long_documents_are_planned_but_not_kept(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    # a request body may be megabytes: the cache, which holds its keys, only keeps short documents
    planned, _ = schemas
    assert planned.plans is not None
    padding = "#" + "x" * (MAX_CACHED_QUERY + 10) + "\n"
    size = planned.plans.cached.cache_info().currsize

    result = await planned.execute(padding + "query Long { __typename }", context_value=context(client, None))

    assert result.data == {"__typename": "Query"}
    assert planned.plans.cached.cache_info().currsize == size


@pytest.mark.parametrize(
    ("query", "variables", "code", "message"),
    [
        (chain(8, 8), None, "QUERY_TOO_COSTLY", "33554432 fields at most"),
        (chain(6, 6, "generations(first: $n) { edges { cursor } }"), {"n": 1}, "QUERY_TOO_COSTLY", "fields at most"),
    ],
)
async def test_fragment_attacks_are_refused_on_both_paths(
    client: GraphQLClient,
    schemas: tuple[GenhubSchema, GenhubSchema],
    query: str,
    variables: dict[str, Any] | None,
    code: str,
    message: str,
) -> None:
    for schema in schemas:
        result = await schema.execute(query, variable_values=variables, context_value=context(client, None))
        assert result.data is None and result.errors
        assert result.errors[0].extensions["code"] == code
        assert message in result.errors[0].message
