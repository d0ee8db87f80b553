"""One execution path: every operation runs from the schema's cached operation plans.

HTTP (`Schema.execute`) and WebSocket (`Schema.stream`, `Schema.subscribe`) operations, with
tracing on or off, are parsed, validated and costed by the one plan cache (graph/execution.py)
and get the same error policy. Here the same operations run through each entry, on the real
app's services, and the answers must be identical.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from graphql import GraphQLError
from graphql.error import GraphQLSyntaxError
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from graph.context import Context, Credentials
from graph.execution import MAX_CACHED_QUERY
from graph.limits import query_limits
from graph.schema import GenhubSchema, build_schema
from graph.tracing import OperationSpans
from tests.fixtures.app import GraphQLClient, app_settings, register_user, running_app
from tests.integration.test_limits import BIG_PAGE, CYCLIC_FRAGMENTS, DEEP, NESTED_PAGES, UNKNOWN_FRAGMENT, aliases

EXPORTER = InMemorySpanExporter()


def chain(levels: int, fan_out: int, leaf: str = "me { id }") -> str:
    """Fragment i spreads fragment i-1 `fan_out` times: the expansion has fan_out**levels leaves."""
    fragments = [f"fragment F0 on Query {{ {leaf} }}"]
    fragments += [f"fragment F{i} on Query {{ {' '.join([f'...F{i - 1}'] * fan_out)} }}" for i in range(1, levels + 1)]
    variables = "($n: Int)" if "$n" in leaf else ""
    return f"query Chain{variables} {{ ...F{levels} }}\n" + "\n".join(fragments)


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
    """The same schema untraced and traced (spans kept in memory, no global tracer provider)."""
    limits = query_limits(client.app.state.settings)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    plain = build_schema(limits=limits, mask_errors=True)
    traced = build_schema(limits=limits, mask_errors=True, tracing=OperationSpans(provider.get_tracer("tests")))
    return plain, traced


def context(client: GraphQLClient, token: str | None) -> Context:
    return Context(services=client.services, credentials=Credentials(token), request_id="req-1")


def shape(result: Any) -> dict[str, Any]:
    return {"data": result.data, "errors": [e.formatted for e in result.errors or []]}


async def first_streamed(schema: GenhubSchema, query: str, **kwargs: Any) -> ExecutionResult:
    stream = await schema.stream(query, **kwargs)
    try:
        return await anext(stream)
    finally:
        await stream.aclose()


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
async def test_tracing_changes_no_answer(
    client: GraphQLClient,
    token: str,
    schemas: tuple[GenhubSchema, GenhubSchema],
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> None:
    for bearer in (token, None):
        # when the operation runs untraced and traced
        results = [
            shape(
                await schema.execute(
                    query,
                    variable_values=variables,
                    context_value=context(client, bearer),
                    operation_name=operation_name,
                )
            )
            for schema in schemas
        ]
        # then they agree, errors (codes, messages, locations, request ids) included
        assert results[0] == results[1]


@pytest.mark.parametrize(
    ("query", "variables", "operation_name"), [o[1:] for o in OPERATIONS], ids=[o[0] for o in OPERATIONS]
)
async def test_websocket_answers_as_http_does(
    client: GraphQLClient,
    token: str,
    schemas: tuple[GenhubSchema, GenhubSchema],
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> None:
    plain, _ = schemas
    for bearer in (token, None):
        kwargs: dict[str, Any] = {"variable_values": variables, "operation_name": operation_name}
        # when the operation is sent over HTTP and over WebSocket
        http = await plain.execute(query, context_value=context(client, bearer), **kwargs)
        ws = await first_streamed(plain, query, context_value=context(client, bearer), **kwargs)
        assert http.errors is not None or ws.errors is None
        if ws.errors and isinstance(ws.errors[0], GraphQLSyntaxError):
            # then a document that does not parse is the same refusal, its type kept for the
            # transport (graphql-transport-ws closes with 4400)
            assert isinstance(ws, PreExecutionError) and http.errors is not None
            assert [e.message for e in ws.errors] == [e.message for e in http.errors]
        else:
            # then the answers agree, errors (codes, messages, locations, request ids) included
            assert shape(ws) == shape(http)


async def test_an_unknown_operation_is_raised_traced_or_not(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    for schema in schemas:
        with pytest.raises(CannotGetOperationTypeError):
            await schema.execute("query A { __typename }", operation_name="Z", context_value=context(client, None))


async def test_planned_path_refuses_an_ambiguous_document(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    # (strawberry's own Schema.execute would run the first operation; HTTP refuses such documents before)
    planned, _ = schemas
    with pytest.raises(CannotGetOperationTypeError):
        await planned.execute("query A { __typename } query B { __typename }", context_value=context(client, None))


async def test_operation_types_the_caller_does_not_allow_are_refused_traced_or_not(
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
async def test_fragment_attacks_are_refused_traced_or_not(
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


# ---------------------------------------------------------------- WebSocket: strawberry's stream contract, from the plans

TOO_DEEP_SUBSCRIPTION = (
    "subscription Deep { myGenerationEvents { generation { board { generations(first: 1) { edges { node { board {"
    " generations(first: 1) { edges { node { board { generations(first: 1) { edges { node { id } } } } } } }"
    " } } } } } } } }"
)


async def test_a_subscription_is_judged_by_the_plan_cache_http_uses(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    plain, _ = schemas
    before = plain.plans.cached.cache_info()
    # when a subscription breaking a limit is sent over WebSocket, then its plan is asked for again
    refused = await first_streamed(plain, TOO_DEEP_SUBSCRIPTION, context_value=context(client, None))
    plain.plans.get(TOO_DEEP_SUBSCRIPTION)
    # then it was refused before anything ran, with the code HTTP gives, and judged once
    assert isinstance(refused, PreExecutionError) and refused.errors
    assert refused.errors[0].extensions["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "exceeds maximum operation depth" in refused.errors[0].message
    after = plain.plans.cached.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)


@pytest.mark.parametrize(
    ("query", "operation_name", "check"),
    [
        ("subscription {", None, lambda e: isinstance(e, GraphQLSyntaxError)),
        ("subscription S { creditsChanged { balance } }", "Z", lambda e: "Unknown operation named" in e.message),
        ("query { __typename }", None, lambda e: e.message == "queries are not allowed"),
        ("", None, lambda e: "missing" in e.message),
    ],
    ids=["syntax error", "no such operation", "a query", "no document"],
)
async def test_subscribe_refuses_as_strawberry_does(
    client: GraphQLClient,
    schemas: tuple[GenhubSchema, GenhubSchema],
    query: str,
    operation_name: str | None,
    check: Any,
) -> None:
    # when legacy graphql-ws asks for something that cannot be subscribed to
    plain, _ = schemas
    stream = await plain.subscribe(query, context_value=context(client, None), operation_name=operation_name)
    results = [r async for r in stream]
    # then one PreExecutionError, of the type or with the message its transport reads
    assert len(results) == 1 and isinstance(results[0], PreExecutionError) and results[0].errors
    assert check(results[0].errors[0]), results[0].errors[0]
    if operation_name is not None:
        assert isinstance(results[0].errors[0].original_error, CannotGetOperationTypeError)


async def test_a_subscription_failing_in_its_stream_gets_the_error_policy(
    client: GraphQLClient, token: str, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    # given a watch of a generation that does not exist (refused once its stream starts)
    plain, _ = schemas
    query = 'subscription W { watched: generationUpdated(id: "00000000-0000-0000-0000-000000000000") { at } }'
    stream = await plain.subscribe(query, context_value=context(client, token))
    results = [r async for r in stream]
    # then one result whose error is coded and located at the root field, then the end
    [result] = results
    assert result.data is None and result.errors
    error = result.errors[0].formatted
    assert error["extensions"]["code"] == "NOT_FOUND" and error["extensions"]["requestId"] == "req-1"
    assert error["path"] == ["watched"]


async def test_an_anonymous_subscription_is_refused_before_it_starts(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    plain, _ = schemas
    stream = await plain.subscribe("subscription { creditsChanged { balance } }", context_value=context(client, None))
    results = [r async for r in stream]
    assert len(results) == 1 and isinstance(results[0], PreExecutionError) and results[0].errors
    assert results[0].errors[0].extensions["code"] == "UNAUTHENTICATED"


# ---------------------------------------------------------------- spans, emitted by the same path

INLINE_LOGIN = (
    'mutation InlineLogin { login(input: {email: "paths@example.com", password: "not it 123"}) { __typename } }'
)


async def test_spans_name_the_operation_and_its_resolvers_without_secrets(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    _, traced = schemas
    EXPORTER.clear()
    # when an operation with an inline password runs traced
    result = await traced.execute(INLINE_LOGIN, context_value=context(client, None))
    assert result.errors is None
    # then one operation span carries the operation text with its literals replaced
    spans = {s.name: s for s in EXPORTER.get_finished_spans()}
    operation = spans["GraphQL Query: InlineLogin"]
    assert operation.attributes is not None and 'password: "***"' in str(operation.attributes["query"])
    # and the resolver's span is its child, with the path and no argument values
    resolver = spans["GraphQL Resolving: login"]
    assert resolver.parent is not None and resolver.parent.span_id == operation.context.span_id
    assert resolver.attributes is not None and resolver.attributes["graphql.path"] == "login"
    assert not [k for k in resolver.attributes if k.startswith("graphql.param")]
    assert "not it 123" not in str([(s.name, dict(s.attributes or {})) for s in EXPORTER.get_finished_spans()])
    # and plain fields read from attributes have no span
    assert "GraphQL Resolving: __typename" not in spans


async def test_a_subscription_span_lasts_until_its_stream_ends(
    client: GraphQLClient, token: str, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    # given a traced subscription waiting for its first event
    _, traced = schemas
    EXPORTER.clear()
    query = "subscription Credits { creditsChanged { balance } }"
    stream = await traced.subscribe(query, context_value=context(client, token))
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    assert "GraphQL Query: Credits" not in [s.name for s in EXPORTER.get_finished_spans()]
    # when the client stops it (the transport cancels the operation's task)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    # then its one span has ended, with no error recorded
    [span] = [s for s in EXPORTER.get_finished_spans() if s.name == "GraphQL Query: Credits"]
    assert not span.events


async def test_refused_documents_are_traced_too(
    client: GraphQLClient, schemas: tuple[GenhubSchema, GenhubSchema]
) -> None:
    _, traced = schemas
    EXPORTER.clear()
    result = await traced.execute("query Broken { me { nope } }", context_value=context(client, None))
    assert result.errors and result.errors[0].extensions["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert [s.name for s in EXPORTER.get_finished_spans()] == ["GraphQL Query: Broken"]
    assert isinstance(result.errors[0], GraphQLError)
