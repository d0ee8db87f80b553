"""Every operation of the schema, probed from the schema itself (a new argument is covered as it lands).

- Text that cannot be stored (NUL, unpaired surrogates), placed by hypothesis in any
  string, ID or JSON argument of any query or mutation, gets a typed answer naming the
  argument (InvalidInput, or the INVALID_INPUT code), never an internal error.
- A verified token whose account no longer exists is UNAUTHENTICATED wherever a bad
  token is, on every operation, on SQLite and PostgreSQL.
- Where introspection is off, no error suggests a name ("Did you mean ...?").
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    get_named_type,
    print_type,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.users import Role
from graph.schema import build_schema
from tests.fixtures.app import GraphQLClient, SettingsFactory, admin_token, register_user, running_app
from tests.fixtures.services import asyncpg_to_sqlalchemy

SCHEMA = build_schema().graphql_schema
TEXT = frozenset({"String", "ID", "JSON"})


@dataclass(frozen=True)
class Slot:
    """One place that takes text: a root field, and the path to the value within its arguments."""

    operation: str  # query | mutation
    field: str
    path: tuple[str, ...]  # argument, then input fields
    scalar: str
    expected_name: str  # how the error names it
    listed: bool = False  # the argument is a list of the scalar


def placeholder(kind: GraphQLInputType) -> Any:
    """A value of the type, filled in as far as the type requires."""
    if isinstance(kind, GraphQLNonNull):
        return placeholder(kind.of_type)
    if isinstance(kind, GraphQLList):
        return []
    if isinstance(kind, GraphQLInputObjectType):
        return {n: placeholder(f.type) for n, f in kind.fields.items() if isinstance(f.type, GraphQLNonNull)}
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    assert isinstance(kind, GraphQLScalarType)
    return {"String": "x", "ID": str(uuid.uuid4()), "Int": 1, "Float": 1.0, "Boolean": False, "JSON": {}}.get(
        kind.name, "2026-01-01T00:00:00Z"
    )


def slots_of(operation: str, root: GraphQLObjectType) -> Iterator[Slot]:
    for field_name, field in root.fields.items():
        for arg_name, argument in field.args.items():
            yield from _walk(operation, field_name, (arg_name,), argument.type, "" if arg_name == "input" else arg_name)


def _walk(operation: str, field: str, path: tuple[str, ...], kind: Any, name: str) -> Iterator[Slot]:
    named = get_named_type(kind)
    listed = isinstance(kind.of_type if isinstance(kind, GraphQLNonNull) else kind, GraphQLList)
    if isinstance(named, GraphQLScalarType) and named.name in TEXT:
        yield Slot(operation, field, path, named.name, name, listed)
    elif isinstance(named, GraphQLInputObjectType) and not listed and len(path) < 4:
        for inner, f in named.fields.items():
            yield from _walk(operation, field, (*path, inner), f.type, f"{name}.{inner}" if name else inner)


SLOTS = [
    *slots_of("query", SCHEMA.query_type),  # type: ignore[arg-type]
    *slots_of("mutation", SCHEMA.mutation_type),  # type: ignore[arg-type]
]


def selection(field: GraphQLField) -> str:
    result = get_named_type(field.type)
    if isinstance(result, GraphQLUnionType):
        members = [t.name for t in result.types]
        invalid = "... on InvalidInput { fields { field message } }" if "InvalidInput" in members else ""
        return "{ __typename " + invalid + " }"
    if isinstance(result, GraphQLObjectType | GraphQLInterfaceType):
        return "{ __typename }"
    return ""


def document(operation: str, field_name: str, field: GraphQLField) -> str:
    """The field with every argument passed as a variable of its own type."""
    declared = ", ".join(f"${n}: {_type_name(a)}" for n, a in field.args.items())
    passed = ", ".join(f"{n}: ${n}" for n in field.args)
    head = f"{operation} Probe({declared})" if declared else f"{operation} Probe"
    call = f"{field_name}({passed})" if passed else field_name
    return f"{head} {{ {call} {selection(field)} }}"


def _type_name(argument: GraphQLArgument) -> str:
    return str(argument.type)


def variables_for(field: GraphQLField) -> dict[str, Any]:
    return {n: placeholder(a.type) for n, a in field.args.items()}


def put(variables: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = variables
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


def root(operation: str) -> GraphQLObjectType:
    kind = SCHEMA.query_type if operation == "query" else SCHEMA.mutation_type
    assert kind is not None
    return kind


BAD_CHARACTERS = st.sampled_from(["\x00", "\ud800", "\udfff", "\udbff"])
HOSTILE_TEXT = st.builds(
    lambda before, bad, after: before + bad + after, st.text(max_size=12), BAD_CHARACTERS, st.text(max_size=12)
)


def hostile_value(scalar: str) -> st.SearchStrategy[Any]:
    if scalar != "JSON":
        return HOSTILE_TEXT
    return st.one_of(
        HOSTILE_TEXT,
        st.builds(lambda t: {"a": [1, {"b": t}]}, HOSTILE_TEXT),
        st.builds(lambda t: {t: 1}, HOSTILE_TEXT),
        st.builds(lambda t: [t], HOSTILE_TEXT),
    )


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    from tests.fixtures.app import app_settings

    async with running_app(app_settings(tmp_path_factory.mktemp("probe"))) as c:
        yield c


async def post(client: GraphQLClient, query: str, variables: dict[str, Any], token: str | None) -> dict[str, Any]:
    # json.dumps escapes lone surrogates (\ud800), as a browser's JSON.stringify does
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = await client.http.post(
        "/graphql", content=json.dumps({"query": query, "variables": variables}).encode(), headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_probe_covers_the_schema() -> None:
    # every operation that takes text has slots; the probe reads them from the schema
    fields = {(s.operation, s.field) for s in SLOTS}
    assert ("mutation", "register") in fields and ("mutation", "setAdminSetting") in fields
    assert {s.expected_name for s in SLOTS if s.field == "grantCredits"} >= {"reason", "idempotencyKey", "userId"}
    assert len(SLOTS) > 30, print_type(SCHEMA.mutation_type)  # type: ignore[arg-type]


@settings(max_examples=len(SLOTS) * 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_text_that_cannot_be_stored_is_refused_by_name_everywhere(client: GraphQLClient, data: Any) -> None:
    # given any text argument of any operation, holding a NUL or an unpaired surrogate
    slot = data.draw(st.sampled_from(SLOTS))
    field = root(slot.operation).fields[slot.field]
    variables = variables_for(field)
    value = data.draw(hostile_value(slot.scalar))
    put(variables, slot.path, [value] if slot.listed else value)
    token = await _token(client)
    # when it is sent, signed in or not
    body = await post(
        client, document(slot.operation, slot.field, field), variables, data.draw(st.sampled_from([token, None]))
    )
    # then the answer is typed and names the argument; nothing is internal
    errors = body.get("errors") or []
    assert all(e["extensions"]["code"] != "INTERNAL_SERVER_ERROR" for e in errors), body
    result = (body.get("data") or {}).get(slot.field)
    if isinstance(result, dict) and result.get("__typename") == "InvalidInput":
        assert slot.expected_name in [f["field"] for f in result["fields"]], (slot, body)
    else:
        assert errors and errors[0]["extensions"]["code"] == "INVALID_INPUT", (slot, body)
        assert slot.expected_name in errors[0]["message"], (slot, body)


_tokens: dict[int, str] = {}


async def _token(client: GraphQLClient) -> str:
    if id(client) not in _tokens:
        _tokens[id(client)] = await admin_token(client)
    return _tokens[id(client)]


# ------------------------------------------------------------------ vanished accounts

ROOT_FIELDS = [("query", n) for n in root("query").fields] + [("mutation", n) for n in root("mutation").fields]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The database of the app under test: SQLite under its data dir, or the session's PostgreSQL."""
    if request.param == "sqlite":
        return ""
    return asyncpg_to_sqlalchemy(request.getfixturevalue("postgres_dsn"))


@pytest.fixture
async def store_client(store_url: str, make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings(database_url=store_url)) as c:
        yield c


def codes(body: dict[str, Any]) -> set[str]:
    return {e["extensions"]["code"] for e in body.get("errors") or []}


async def test_a_token_whose_account_is_gone_is_unauthenticated_on_every_operation(
    store_client: GraphQLClient,
) -> None:
    # given a token signed by this server for an account that does not exist (removed, or never here),
    # and a token that does not verify at all
    client = store_client
    gone = client.container.tokens.issue_access(uuid.uuid4(), Role.ADMIN).token
    forged = gone[:-4] + ("AAAA" if not gone.endswith("AAAA") else "BBBB")
    for operation, name in ROOT_FIELDS:
        field = root(operation).fields[name]
        query, variables = document(operation, name, field), variables_for(field)
        # when every operation is called with each
        with_gone = await post(client, query, variables, gone)
        with_forged = await post(client, query, variables, forged)
        # then the vanished account is treated exactly as the bad token: never an internal error
        assert "INTERNAL_SERVER_ERROR" not in codes(with_gone), (name, with_gone)
        assert ("UNAUTHENTICATED" in codes(with_gone)) == ("UNAUTHENTICATED" in codes(with_forged)), (
            name,
            with_gone,
            with_forged,
        )


async def test_an_account_that_goes_away_stops_its_tokens_after_the_check_window(store_client: GraphQLClient) -> None:
    # given a signed-in user whose account is confirmed
    client = store_client
    user = await register_user(client, f"gone-{uuid.uuid4().hex[:8]}@example.com")
    me = "query Me { me { id } }"
    assert (await post(client, me, {}, user["accessToken"]))["data"]["me"]["id"] == user["user"]["id"]
    # when the account is removed and this process forgets its confirmation
    container = client.container
    from sqlalchemy import text

    async with container.engine.begin() as conn:
        user_id = uuid.UUID(user["user"]["id"])
        params = {"id": user_id.hex if container.settings.is_sqlite else user_id}
        for table, column in (
            ("refresh_tokens", "user_id"),
            ("credit_ledger", "user_id"),
            ("credit_accounts", "user_id"),
        ):
            await conn.execute(text(f"DELETE FROM {table} WHERE {column} = :id"), params)
        await conn.execute(text("DELETE FROM users WHERE id = :id"), params)
    container.access_gate.forget(user_id)
    # then its token is unauthenticated, and writes that would reference it fail typed
    assert codes(await post(client, me, {}, user["accessToken"])) == {"UNAUTHENTICATED"}
    board = 'mutation B { createBoard(input: {name: "x"}) { __typename } }'
    assert codes(await post(client, board, {}, user["accessToken"])) == {"UNAUTHENTICATED"}


# ------------------------------------------------------------------ suggestions


@pytest.mark.parametrize("introspection", [False, True])
async def test_suggestions_only_where_the_schema_is_public(make_settings: SettingsFactory, introspection: bool) -> None:
    near_misses = [
        "{ generatio { id } }",
        "{ me { emial } }",
        "query Q($f: GenerationFiltr) { generations(filter: $f) { edges { cursor } } }",
        "{ generations(frist: 2) { edges { cursor } } }",
        "query Q { generations(filter: {statuz: QUEUED}) { edges { cursor } } }",
        "query Q { generations(filter: {status: QUEUD}) { edges { cursor } } }",
    ]
    coercions = [
        ("query Q($f: GenerationFilter) { generations(filter: $f) { edges { cursor } } }", {"f": {"statuz": "X"}}),
        ("query Q($f: GenerationFilter) { generations(filter: $f) { edges { cursor } } }", {"f": {"status": "QUEUD"}}),
    ]
    async with running_app(make_settings(introspection=introspection)) as client:
        bodies = [await client.execute(q, expect_errors=True) for q in near_misses]
        bodies += [await client.execute(q, v, expect_errors=True) for q, v in coercions]
    messages = [e["message"] for body in bodies for e in body["errors"]]
    assert len(messages) >= len(bodies)
    hinted = [m for m in messages if "Did you mean" in m]
    if introspection:
        assert hinted, messages  # development keeps graphql-core's hints
    else:
        assert hinted == [], hinted


# ------------------------------------------------------------------ subscriptions

SUBSCRIPTION_SLOTS = list(slots_of("subscription", SCHEMA.subscription_type))  # type: ignore[arg-type]


@pytest.mark.parametrize("slot", SUBSCRIPTION_SLOTS, ids=[f"{s.field}.{s.expected_name}" for s in SUBSCRIPTION_SLOTS])
@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["nul", "surrogate"])
async def test_subscription_arguments_cross_the_same_boundary(client: GraphQLClient, slot: Slot, bad: str) -> None:
    from tests.integration.asgi_websocket import AsgiWebSocket

    # given a signed-in subscriber whose subscription argument cannot be stored
    field = SCHEMA.subscription_type.fields[slot.field]  # type: ignore[union-attr]
    variables = variables_for(field)
    put(variables, slot.path, [f"x{bad}"] if slot.listed else f"x{bad}")
    token = await _token(client)
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": document("subscription", slot.field, field), "variables": variables},
            }
        )
        # then the subscription ends with a typed error naming the argument, before any event
        answer = await ws.receive_json()
    errors = answer["payload"] if answer["type"] == "error" else answer["payload"].get("errors", [])
    assert errors and errors[0]["extensions"]["code"] == "INVALID_INPUT", answer
    assert slot.expected_name in errors[0]["message"]
