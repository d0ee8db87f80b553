"""Every connection field, on PostgreSQL and SQLite: only cursors genhub issued page; all else is InvalidInput.

The connection fields are found in the schema itself (every field with an `after` argument,
at the root or one field below it), so a new connection is covered without touching this
module. For each, hypothesis sends random text, random base64, valid-looking cursors with
tampered timestamps or ids (the old plain format and the current one), real cursors changed by
one character and cursors of another deployment, as `after` or as `before`: each answer is
INVALID_INPUT naming the argument, never INTERNAL_SERVER_ERROR. Real cursors walk every list
exactly once, in order, forward (`first`/`after`) and backward (`last`/`before`), and any
generated mix of directions, sizes and cursors gives the very slice of the list it names.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import GraphQLField, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, Undefined, get_named_type
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.audit import Attempt, AuditAction, AuditFilter, AuditOutcome
from domain.boards import Board, BoardRole
from domain.chunks import Chunk, ChunkStatus, chunk_key
from domain.credits import LedgerEntry, LedgerKind
from domain.cursors import CURSOR_LENGTH, EARLIEST, LATEST
from domain.generations import Generation, GenerationStatus
from domain.pagination import PageRequest
from domain.users import Role, User
from domain.webhook_messages import NewDelivery, WebhookMessage
from domain.webhooks import WebhookEvent
from graph.schema import build_schema
from infrastructure.container import cursor_codec
from tests.fixtures.app import ADMIN_LOGIN, GraphQLClient, app_settings, operator_model, register_user, running_app
from tests.fixtures.services import asyncpg_to_sqlalchemy, empty_tables

SCHEMA: GraphQLSchema = build_schema().graphql_schema
INVALID_INPUT = "INVALID_INPUT"
ITEMS = 23  # per list: more than one page at every page size the walks use
TIES = 3  # items sharing one created_at: the id breaks the tie
CHECKS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
OWNER = "ownerId: id"  # selected on a hop's object: the world's board is picked among the viewer's boards


# ---------------------------------------------------------------- connection fields, from the schema


def required_arguments(f: GraphQLField) -> set[str]:
    return {
        name for name, arg in f.args.items() if isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
    }


def connection_fields(owner: GraphQLObjectType) -> list[str]:
    return sorted(name for name, f in owner.fields.items() if "after" in f.args)


@dataclass(frozen=True)
class Route:
    """How one operation reaches one connection field: at the root, or below one root field."""

    connection: str  # "Board.generations"
    hop: str | None = None  # the root field leading to the owner ("boards", "board")
    hop_needs_id: bool = False  # the hop takes `id: ID!` (the world's object of the owner's type)

    @property
    def field(self) -> str:
        return self.connection.split(".")[1]

    @property
    def owner(self) -> str:
        return self.connection.split(".")[0]

    def __str__(self) -> str:
        return f"{self.hop}{'(id:)' if self.hop_needs_id else ''}.{self.field}" if self.hop else self.field

    def document(
        self,
        selection: str = "edges { cursor node { id } } pageInfo { hasNextPage endCursor }",
        backward: bool = False,
    ) -> str:
        """`$first`/`$after` are the page's size and cursor: `first`/`after`, or `last`/`before` when `backward`."""
        size, cursor = ("last", "before") if backward else ("first", "after")
        inner = f"{self.field}({size}: $first, {cursor}: $after) {{ {selection} }}"
        if self.hop is None:
            return f"query Page($first: Int, $after: String) {{ {inner} }}"
        if self.hop_needs_id:
            return f"query Page($first: Int, $after: String, $id: ID!) {{ {self.hop}(id: $id) {{ {OWNER} {inner} }} }}"
        return f"query Page($first: Int, $after: String) {{ {self.hop} {{ {OWNER} {inner} }} }}"

    def connections(self, data: dict[str, Any], owner_id: str | None = None) -> list[dict[str, Any]]:
        """The connection objects in a result (one per owner when the hop is a list; only the owner
        `owner_id`'s when given: the world's board among the viewer's boards)."""
        if self.hop is None:
            return [data[self.field]]
        owners = data[self.hop]
        owners = owners if isinstance(owners, list) else [owners]
        assert owners and None not in owners, (str(self), data)
        if owner_id is not None and len(owners) > 1:
            owners = [o for o in owners if o["ownerId"] == owner_id]
        return [o[self.field] for o in owners]


def routes(schema: GraphQLSchema) -> list[Route]:
    """Every (route to a) connection field: root fields with `after`, and those one hop below
    a root field that takes no required argument, or only `id: ID!`."""
    query = schema.query_type
    assert query is not None
    found = [Route(f"{query.name}.{name}") for name in connection_fields(query)]
    for hop, f in sorted(query.fields.items()):
        owner = get_named_type(f.type)
        needs = required_arguments(f)
        if "after" in f.args or not isinstance(owner, GraphQLObjectType) or needs - {"id"}:
            continue
        found += [Route(f"{owner.name}.{name}", hop, "id" in needs) for name in connection_fields(owner)]
    return found


ROUTES = routes(SCHEMA)


def test_every_connection_field_of_the_schema_is_reached() -> None:
    # given every field with an `after` argument on an object type (root operations aside)
    roots = {t.name for t in (SCHEMA.mutation_type, SCHEMA.subscription_type) if t is not None}
    everywhere = {
        f"{t.name}.{name}"
        for t in SCHEMA.type_map.values()
        if isinstance(t, GraphQLObjectType) and not t.name.startswith("__") and t.name not in roots
        for name in connection_fields(t)
    }
    # then each is reached by a route (a new owner type needs a world object and a hop)
    assert everywhere == {r.connection for r in ROUTES}, "teach routes() how to reach the new connection"
    # and the four known today are among them
    assert {"Query.generations", "Query.chunks", "Query.creditLedger", "Board.generations"} <= everywhere
    assert {str(r) for r in ROUTES} >= {"boards.generations", "board(id:).generations"}


def test_connections_page_both_ways_with_the_arguments_this_module_checks() -> None:
    for route in ROUTES:
        owner = SCHEMA.type_map[route.owner]
        assert isinstance(owner, GraphQLObjectType)
        args = set(owner.fields[route.field].args)
        assert {"first", "after", "last", "before"} <= args, (route.connection, args)
        connection = get_named_type(owner.fields[route.field].type)
        assert isinstance(connection, GraphQLObjectType) and {"edges", "pageInfo"} <= set(connection.fields)
    page_info = SCHEMA.type_map["PageInfo"]
    assert isinstance(page_info, GraphQLObjectType)
    assert set(page_info.fields) >= {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}


# ---------------------------------------------------------------- a world on each store


@dataclass
class World:
    client: GraphQLClient
    token: str  # an admin's: the admin connections are walked too
    store: str
    board_id: str
    user_id: str = ""
    created: dict[uuid.UUID, datetime] = field(default_factory=dict)  # every listed item's created_at
    real_cursors: dict[str, list[str]] = field(default_factory=dict)  # per route, as the app issued them
    real_ids: dict[str, list[str]] = field(default_factory=dict)  # per route, the node ids in list order

    def variables(self, route: Route, first: int | None, after: Any) -> dict[str, Any]:
        hop_id = self.user_id if route.hop == "adminUser" else self.board_id
        return {"first": first, "after": after, **({"id": hop_id} if route.hop_needs_id else {})}

    async def page(self, route: Route, first: int | None, after: Any, backward: bool = False) -> dict[str, Any]:
        """A page of `first` after `after`; with `backward`, of `last` = `first` before `after`."""
        variables = self.variables(route, first, after)
        document = route.document(backward=backward)
        return await self.client.execute(document, variables, token=self.token, expect_errors=True)

    async def slice(
        self, route: Route, size: int | None, *, after: str | None, before: str | None, backward: bool
    ) -> dict[str, Any]:
        """The connection for any mix of the four paging arguments (the full pageInfo)."""
        paging = "last: $size" if backward else "first: $size"
        inner = (
            f"{route.field}({paging}, after: $after, before: $before) "
            "{ edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }"
        )
        head = "$size: Int, $after: String, $before: String"
        if route.hop is None:
            document = f"query Slice({head}) {{ {inner} }}"
        elif route.hop_needs_id:
            document = f"query Slice({head}, $id: ID!) {{ {route.hop}(id: $id) {{ {OWNER} {inner} }} }}"
        else:
            document = f"query Slice({head}) {{ {route.hop} {{ {OWNER} {inner} }} }}"
        variables = {"size": size, "after": after, "before": before}
        if route.hop_needs_id:
            variables["id"] = self.user_id if route.hop == "adminUser" else self.board_id
        body = await self.client.execute(document, variables, token=self.token, expect_errors=True)
        assert "errors" not in body, (str(route), body)
        (connection,) = route.connections(body["data"], self.board_id)
        return connection

    async def walk_back(self, route: Route, size: int) -> list[str]:
        """Every node id of the route's connection, page before page of `size` from the end."""
        seen: list[str] = []
        before: str | None = None
        for _ in range(ITEMS * 3):
            connection = await self.slice(route, size, after=None, before=before, backward=True)
            edges, info = connection["edges"], connection["pageInfo"]
            assert len(edges) <= size and info["hasNextPage"] is False, (str(route), info)
            seen = [e["node"]["id"] for e in edges] + seen
            if not info["hasPreviousPage"]:
                return seen
            assert edges and info["startCursor"] == edges[0]["cursor"]
            before = info["startCursor"]
        raise AssertionError(f"{route}: the walk did not end")

    async def walk(self, route: Route, size: int) -> list[str]:
        """Every node id of the route's connection, page after page of `size`."""
        seen: list[str] = []
        after: str | None = None
        for _ in range(ITEMS * 3):
            body = await self.page(route, size, after)
            assert "errors" not in body, (str(route), body)
            (connection,) = route.connections(body["data"], self.board_id)
            edges = connection["edges"]
            assert len(edges) <= size
            seen += [e["node"]["id"] for e in edges]
            if not connection["pageInfo"]["hasNextPage"]:
                return seen
            assert edges and connection["pageInfo"]["endCursor"] == edges[-1]["cursor"]
            after = connection["pageInfo"]["endCursor"]
        raise AssertionError(f"{route}: the walk did not end")


def moments() -> list[datetime]:
    """ITEMS timestamps: the two ends of the cursor range, and groups of TIES equal ones between."""
    base = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    middle = [base + timedelta(seconds=k // TIES, microseconds=k // TIES) for k in range(ITEMS - 2)]
    return [EARLIEST, LATEST - timedelta(microseconds=1), *middle]


STORES = [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]


@pytest.fixture(scope="module", params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[tuple[str, str | None]]:
    """(store name, PostgreSQL DSN or None); resolved before the event loop runs the async fixtures."""
    name: str = request.param
    yield name, request.getfixturevalue("postgres_dsn") if name == "postgres" else None


@pytest.fixture(scope="module")
async def world(store: tuple[str, str | None], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    name, dsn = store
    overrides: dict[str, Any] = {}
    if dsn is not None:
        await empty_tables(dsn)
        overrides["database_url"] = asyncpg_to_sqlalchemy(dsn)
    # the delivery log's items are as old as the other lists': no retention sweep while the module runs
    overrides.update(webhook_sweep_seconds=3600, webhook_log_retention_days=3650)
    config = app_settings(tmp_path_factory.mktemp(f"cursors-{name}"), simulated_mode="hang", **overrides)
    async with running_app(config) as client:
        email = f"cursors-{name}@example.com"
        session = await register_user(client, email)
        user_id = uuid.UUID(session["user"]["id"])
        model_id = uuid.UUID(await operator_model(client, cost=0))
        board = Board(uuid.uuid4(), "cursor board", user_id, datetime(2026, 1, 1, tzinfo=UTC))
        uow = client.container.uow()
        async with uow:
            await uow.users.set_role(user_id, Role.ADMIN)
            await uow.commit()
        login = await client.execute(ADMIN_LOGIN, {"e": email, "p": "correct horse battery"})
        w = World(client, login["data"]["login"]["accessToken"], name, str(board.id), str(user_id))
        async with uow:
            # the admin's lists: accounts and audit entries at the same moments (the world's own too)
            me = await uow.users.get(user_id)
            assert me is not None
            w.created[user_id] = me.created_at
            for e in (await uow.audit.page(AuditFilter(), PageRequest(100))).items:
                w.created[e.id] = e.created_at
            # the world's board, its members (the admin, and the listed accounts, each joining when it
            # was created) and the admin's other boards, all at the same moments
            await uow.boards.add(board)
            await uow.boards.set_member(board.id, user_id, BoardRole.OWNER, me.created_at)
            w.created[board.id] = board.created_at
            for i, at in enumerate(moments()):
                other = User(uuid.uuid4(), f"listed-{i}@example.com", Role.USER, at)
                await uow.users.add(other)
                await uow.boards.set_member(board.id, other.id, BoardRole.VIEWER, at)
                entry_at = Attempt(AuditAction.SET_ADMIN_SETTING, None, at, f"key-{i}").entry(AuditOutcome.APPLIED)
                await uow.audit.add(entry_at)
                extra = Board(uuid.uuid4(), f"board {i}", user_id, at)
                await uow.boards.add(extra)
                await uow.boards.set_member(extra.id, user_id, BoardRole.EDITOR, at)
                w.created.update({other.id: at, entry_at.id: at, extra.id: at})
            for i, at in enumerate(moments()):
                g = Generation(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    model_id=model_id,
                    prompt=f"item {i}",
                    status=GenerationStatus.SUCCEEDED,
                    created_at=at,
                    updated_at=at,
                    finished_at=at,
                    board_id=board.id if i % 2 == 0 or i == 1 else None,  # both range ends too
                )
                chunk_id = uuid.uuid4()
                key = chunk_key(user_id, chunk_id, "in.png")
                chunk = Chunk(chunk_id, user_id, key, "in.png", "image/png", 1, ChunkStatus.READY, at)
                entry = LedgerEntry(uuid.uuid4(), user_id, LedgerKind.GRANT, 1, f"cursor-test-{i}", at)
                assert await uow.generations.add(g)
                await uow.chunks.add(chunk)
                assert await uow.credits.add_entry(entry)
                # a webhook message about the generation, with one delivery (the delivery log's item)
                message = WebhookMessage(f"msg_{g.id.hex}", user_id, g.id, WebhookEvent.GENERATION_COMPLETED, "{}", at)
                delivery = NewDelivery(
                    uuid.uuid4(),
                    message.id,
                    user_id,
                    None,
                    g.id,
                    message.event,
                    "http://127.0.0.1:9/",
                    uuid.uuid4(),
                    at,
                )
                await uow.webhooks.add_message(message, [delivery], hold=timedelta(0))
                w.created.update({g.id: at, chunk.id: at, entry.id: at, delivery.id: at})
            await uow.commit()
        for route in ROUTES:
            w.real_cursors[str(route)], w.real_ids[str(route)] = await real_cursors(w, route)
        yield w


async def real_cursors(w: World, route: Route) -> tuple[list[str], list[str]]:
    body = await w.page(route, 100, None)
    assert "errors" not in body, body
    (connection,) = route.connections(body["data"], w.board_id)
    assert not connection["pageInfo"]["hasNextPage"] and len(connection["edges"]) > 2 * TIES
    return [e["cursor"] for e in connection["edges"]], [e["node"]["id"] for e in connection["edges"]]


# ---------------------------------------------------------------- what the answers must be


def assert_invalid_after(body: dict[str, Any], route: Route, argument: str = "after") -> None:
    errors = body.get("errors")
    assert errors, (str(route), body)
    for error in errors:
        assert error["extensions"]["code"] == INVALID_INPUT, (str(route), error)
        assert argument in error["message"], (str(route), error)
        assert error["path"][-1] == route.field, (str(route), error)


async def assert_refused(w: World, cursor: str, backward: bool = False) -> None:
    """`cursor` as every connection's `after` (or `before` when `backward`) is INVALID_INPUT naming it."""
    for route in ROUTES:
        assert_invalid_after(await w.page(route, 5, cursor, backward), route, "before" if backward else "after")


# ---------------------------------------------------------------- cursor strategies

ATTACKS = [  # the reported ones: PostgreSQL overflowed converting these to UTC
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
]


def plain(stamp: str, ident: str) -> str:
    """The cursor format genhub used to issue: base64url("<ISO timestamp>|<id>"), unpadded."""
    return base64.urlsafe_b64encode(f"{stamp}|{ident}".encode("utf-8", "surrogatepass")).decode().rstrip("=")


@st.composite
def tampered_stamps(draw: st.DrawFn) -> str:
    year = draw(st.sampled_from([1, 1969, 1970, 2026, 9999, 10000]) | st.integers(0, 99999))
    minutes = draw(st.sampled_from([-(23 * 60 + 59), 23 * 60 + 59, 0]) | st.integers(-1439, 1439))
    sign = "-" if minutes < 0 else "+"
    zone = draw(st.sampled_from(["", "Z", f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"]))
    fraction = draw(st.sampled_from(["", ".5", ".999999", ".1234567", ",5"]))
    clock = draw(st.sampled_from(["00:00:00", "23:59:59", "24:00:00", "12:30"]))
    day = draw(st.sampled_from(["01-01", "12-31", "02-30"]))
    return f"{year:04d}-{day}T{clock}{fraction}{zone}"


ids = st.uuids().map(str) | st.sampled_from(["", "1", "not-a-uuid", "0" * 32, "{" + str(uuid.UUID(int=0)) + "}"])
old_format = st.builds(plain, tampered_stamps() | st.sampled_from(ATTACKS), ids)


@st.composite
def current_format_forged(draw: st.DrawFn) -> str:
    """The current layout (version, microseconds, id, tag) with chosen values and a tag not made with our key."""
    micros = draw(
        st.sampled_from([-1, 0, -(2**63), 2**63 - 1, (LATEST - EARLIEST) // timedelta(microseconds=1)])
        | st.integers(-(2**63), 2**63 - 1)
    )
    raw = struct.pack(">Bq16s", draw(st.sampled_from([1, 0, 2])), micros, draw(st.uuids()).bytes)
    return base64.urlsafe_b64encode(raw + draw(st.binary(min_size=16, max_size=16))).decode().rstrip("=")


random_base64 = st.builds(
    lambda raw, url, padded: (
        (base64.urlsafe_b64encode if url else base64.b64encode)(raw).decode().rstrip("" if padded else "=")
    ),
    st.binary(max_size=96),
    st.booleans(),
    st.booleans(),
)
random_text = st.text(max_size=120) | st.text(ALPHABET, min_size=CURSOR_LENGTH, max_size=CURSOR_LENGTH)


def one_character_changed(token: str, data: st.DataObject) -> str:
    i = data.draw(st.integers(0, len(token) - 1), label="position")
    edit = data.draw(st.sampled_from(["replace", "insert", "delete"]), label="edit")
    if edit == "delete":
        return token[:i] + token[i + 1 :]
    other = data.draw(st.sampled_from(ALPHABET).filter(lambda ch: ch != token[i]) | st.characters(), label="char")
    if edit == "insert":
        return token[:i] + other + token[i:]
    return token[:i] + other + token[i + 1 :] if other != token[i] else token[:i] + token[i + 1 :]


# ---------------------------------------------------------------- the tests


@CHECKS
@given(cursor=random_text, backward=st.booleans())
async def test_random_text_is_invalid_after(world: World, cursor: str, backward: bool) -> None:
    await assert_refused(world, cursor, backward)


@CHECKS
@given(cursor=random_base64, backward=st.booleans())
async def test_random_bytes_in_base64_are_invalid_after(world: World, cursor: str, backward: bool) -> None:
    await assert_refused(world, cursor, backward)


@CHECKS
@given(cursor=old_format, backward=st.booleans())
@example(cursor=plain(ATTACKS[0], str(uuid.uuid4())), backward=False)
@example(cursor=plain(ATTACKS[1], str(uuid.uuid4())), backward=True)
async def test_old_style_cursors_with_tampered_timestamps_or_ids_are_invalid_after(
    world: World, cursor: str, backward: bool
) -> None:
    await assert_refused(world, cursor, backward)


@CHECKS
@given(cursor=current_format_forged(), backward=st.booleans())
async def test_forged_cursors_in_the_current_layout_are_invalid_after(
    world: World, cursor: str, backward: bool
) -> None:
    await assert_refused(world, cursor, backward)


@CHECKS
@given(data=st.data())
async def test_real_cursors_with_a_tampered_id_are_invalid_after(world: World, data: st.DataObject) -> None:
    # given a cursor the app issued, its tag kept, its id replaced by another (maybe a real item's)
    route = data.draw(st.sampled_from(ROUTES), label="route")
    token = data.draw(st.sampled_from(world.real_cursors[str(route)]), label="cursor")
    raw = bytearray(base64.urlsafe_b64decode(token + "="))
    other = data.draw(st.sampled_from(sorted(world.created)) | st.uuids(), label="id")
    raw[9:25] = other.bytes
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    if forged != token:
        # then every connection refuses it, as `after` and as `before`
        await assert_refused(world, forged, data.draw(st.booleans(), label="backward"))


@CHECKS
@given(data=st.data())
async def test_real_cursors_changed_by_one_character_are_invalid_after(world: World, data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(ROUTES), label="route")
    token = data.draw(st.sampled_from(world.real_cursors[str(route)]), label="cursor")
    mutated = one_character_changed(token, data)
    assert mutated != token
    await assert_refused(world, mutated, data.draw(st.booleans(), label="backward"))


@pytest.mark.parametrize("cursor", ["\x00", "\ud800", "\x00" * CURSOR_LENGTH, "\udfff" * CURSOR_LENGTH, "A" * 100_000])
async def test_nul_lone_surrogates_and_long_strings_are_invalid_after(world: World, cursor: str) -> None:
    # sent as JSON escapes (what an HTTP client's encoder may refuse to write itself)
    for route in ROUTES:
        raw = json.dumps({"query": route.document(), "variables": world.variables(route, 5, cursor)}).encode()
        headers = {"Authorization": f"Bearer {world.token}", "content-type": "application/json"}
        response = await world.client.http.post("/graphql", content=raw, headers=headers)
        assert response.status_code == 200, response.text
        assert_invalid_after(response.json(), route)


async def test_cursors_of_another_deployment_are_invalid_after(world: World) -> None:
    # given real positions, encoded with the key of this app's settings and of a changed secret
    settings_now = world.client.app.state.settings
    rotated = settings_now.model_copy(update={"jwt_secret": "another deployment's secret, just as long"})
    here, elsewhere = cursor_codec(settings_now), cursor_codec(rotated)
    for route in ROUTES:
        issued = world.real_cursors[str(route)]
        position = here.decode(issued[2])
        # then this app's own key gives back exactly what it issued, and the page after it
        assert here.encode(position) == issued[2]
        body = await world.page(route, 2, here.encode(position))
        (connection,) = route.connections(body["data"], world.board_id)
        assert [e["cursor"] for e in connection["edges"]] == issued[3:5]
        # and the other key's cursor for the very same position is refused
        assert_invalid_after(await world.page(route, 2, elsewhere.encode(position)), route)


@pytest.mark.parametrize("size", [1, 2, TIES, 4, 7, 100])
async def test_real_cursors_walk_each_list_once_in_order(world: World, size: int) -> None:
    for route in ROUTES:
        # when a client walks the list page by page with the cursors it is given
        seen = await world.walk(route, size)
        # then each item comes exactly once, newest first, ties broken by id
        assert len(seen) == len(set(seen)) == len(world.real_cursors[str(route)]), str(route)
        keys = [(world.created[uuid.UUID(i)], uuid.UUID(i)) for i in seen]
        assert keys == sorted(keys, reverse=True), str(route)
        # including the items at both ends of the cursor range
        assert keys[0][0] == LATEST - timedelta(microseconds=1) and keys[-1][0] == EARLIEST, str(route)


async def test_after_null_is_the_first_page_and_an_empty_after_is_invalid(world: World) -> None:
    for route in ROUTES:
        body = await world.page(route, 3, None)
        (connection,) = route.connections(body["data"], world.board_id)
        assert [e["cursor"] for e in connection["edges"]] == world.real_cursors[str(route)][:3]
        assert_invalid_after(await world.page(route, 3, ""), route)


async def test_the_last_cursor_gives_an_empty_last_page(world: World) -> None:
    for route in ROUTES:
        body = await world.page(route, 5, world.real_cursors[str(route)][-1])
        (connection,) = route.connections(body["data"], world.board_id)
        assert connection == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


@pytest.mark.parametrize("first", [-1, -(2**31), 101, 1000, 2**31 - 1])
async def test_first_out_of_bounds_is_invalid_input_naming_first(world: World, first: int) -> None:
    for route in ROUTES:
        body = await world.page(route, first, None)
        codes = [e["extensions"]["code"] for e in body.get("errors", [])]
        assert codes and set(codes) == {INVALID_INPUT}, (str(route), body)
        assert all("first" in e["message"] for e in body["errors"]), (str(route), body)


@pytest.mark.parametrize("first", [2**31, -(2**31) - 1, 2**53])
async def test_first_beyond_a_graphql_int_is_refused_before_any_resolver(world: World, first: int) -> None:
    for route in ROUTES:
        body = await world.page(route, first, None)
        assert "data" not in body or body["data"] is None, (str(route), body)
        assert {e["extensions"]["code"] for e in body["errors"]} <= {"BAD_REQUEST", "GRAPHQL_VALIDATION_FAILED"}
        assert "first" in body["errors"][0]["message"], (str(route), body)


async def test_first_zero_is_an_empty_page_and_null_the_default_one(world: World) -> None:
    for route in ROUTES:
        (empty,) = route.connections((await world.page(route, 0, None))["data"], world.board_id)
        assert empty["edges"] == [] and empty["pageInfo"]["endCursor"] is None, str(route)
        (default,) = route.connections((await world.page(route, None, None))["data"], world.board_id)
        expected = world.real_cursors[str(route)][:20]
        assert [e["cursor"] for e in default["edges"]] == expected, str(route)


# ---------------------------------------------------------------- backward paging (`last`/`before`)


@pytest.mark.parametrize("size", [1, TIES, 7, 100])
async def test_real_cursors_walk_each_list_backward_once_in_the_same_order(world: World, size: int) -> None:
    for route in ROUTES:
        # when a client walks the list from its end, `last: size` before each page's startCursor
        seen = await world.walk_back(route, size)
        # then the pages put together are the list itself, in the list's order (newest first)
        assert seen == world.real_ids[str(route)], str(route)


def expected_slice(
    ids: list[str], cursors: list[str], size: int, after: int | None, before: int | None, backward: bool
) -> dict[str, Any]:
    """The connection the Relay specification's algorithm gives for this slice of the list."""
    lower = after + 1 if after is not None else 0
    upper = before if before is not None else len(ids)
    window = list(range(lower, max(lower, upper)))
    shown = (window[-size:] if size else []) if backward else window[:size]
    more = len(window) > size
    return {
        "edges": [{"cursor": cursors[k], "node": {"id": ids[k]}} for k in shown],
        "pageInfo": {
            "hasNextPage": more and not backward,
            "hasPreviousPage": more and backward,
            "startCursor": cursors[shown[0]] if shown else None,
            "endCursor": cursors[shown[-1]] if shown else None,
        },
    }


@CHECKS
@given(data=st.data())
async def test_any_mix_of_paging_arguments_gives_the_slice_it_names(world: World, data: st.DataObject) -> None:
    # given a list, and any size, direction and cursors of it (`after` and `before` together too)
    route = data.draw(st.sampled_from(ROUTES), label="route")
    ids, cursors = world.real_ids[str(route)], world.real_cursors[str(route)]
    positions = st.none() | st.integers(0, len(ids) - 1)
    after, before = data.draw(positions, label="after"), data.draw(positions, label="before")
    size = data.draw(st.integers(0, len(ids) + 2), label="size")
    backward = data.draw(st.booleans(), label="backward")
    # when it asks for that page
    connection = await world.slice(
        route,
        size,
        after=cursors[after] if after is not None else None,
        before=cursors[before] if before is not None else None,
        backward=backward,
    )
    # then it gets exactly the items between the cursors, `first` from the start or `last` from the end
    assert connection == expected_slice(ids, cursors, size, after, before, backward), str(route)


async def test_last_with_no_cursor_is_the_end_of_the_list_and_null_last_the_default_page(world: World) -> None:
    for route in ROUTES:
        ids, cursors = world.real_ids[str(route)], world.real_cursors[str(route)]
        tail = await world.slice(route, 3, after=None, before=None, backward=True)
        assert tail == expected_slice(ids, cursors, 3, None, None, True), str(route)
        # the first item's cursor as `before`: nothing precedes it
        head = await world.slice(route, 5, after=None, before=cursors[0], backward=True)
        assert head == expected_slice(ids, cursors, 5, None, 0, True), str(route)
        default = await world.slice(route, None, after=None, before=None, backward=True)
        assert default == expected_slice(ids, cursors, 20, None, None, False), str(route)


@pytest.mark.parametrize("size", [-1, 101, 2**31 - 1])
async def test_last_out_of_bounds_is_invalid_input_naming_last(world: World, size: int) -> None:
    for route in ROUTES:
        body = await world.page(route, size, None, backward=True)
        codes = [e["extensions"]["code"] for e in body.get("errors", [])]
        assert codes and set(codes) == {INVALID_INPUT}, (str(route), body)
        assert all("last" in e["message"] for e in body["errors"]), (str(route), body)


@pytest.mark.parametrize(("first", "last"), [(1, 1), (0, 0), (20, 5), (100, 100)])
async def test_first_and_last_together_are_invalid_input_naming_last(world: World, first: int, last: int) -> None:
    for route in ROUTES:
        inner = f"{route.field}(first: {first}, last: {last}) {{ edges {{ cursor }} }}"
        if route.hop is None:
            document = f"query Both {{ {inner} }}"
        elif route.hop_needs_id:
            document = f"query Both($id: ID!) {{ {route.hop}(id: $id) {{ {inner} }} }}"
        else:
            document = f"query Both {{ {route.hop} {{ {inner} }} }}"
        variables = {"id": world.user_id if route.hop == "adminUser" else world.board_id} if route.hop_needs_id else {}
        body = await world.client.execute(document, variables, token=world.token, expect_errors=True)
        codes = [e["extensions"]["code"] for e in body.get("errors", [])]
        assert codes and set(codes) == {INVALID_INPUT}, (str(route), body)
        assert all("last" in e["message"] and "first" in e["message"] for e in body["errors"]), (str(route), body)


# ---------------------------------------------------------------- totalCount where it is cheap

#: Connections that count their items; the others grow without bound (docs/clients.md, "Paging").
COUNTED = {"Query.chunks", "Query.boardsConnection", "Board.membersConnection"}


def test_total_count_is_offered_exactly_where_it_is_cheap() -> None:
    for route in ROUTES:
        owner = SCHEMA.type_map[route.owner]
        assert isinstance(owner, GraphQLObjectType)
        connection = get_named_type(owner.fields[route.field].type)
        assert isinstance(connection, GraphQLObjectType)
        assert ("totalCount" in connection.fields) == (route.connection in COUNTED), route.connection


async def test_total_count_counts_the_whole_list_whatever_the_page(world: World) -> None:
    for route in ROUTES:
        if route.connection not in COUNTED:
            continue
        for backward in (False, True):
            document = route.document("totalCount edges { cursor }", backward=backward)
            body = await world.client.execute(
                document, world.variables(route, 2, world.real_cursors[str(route)][3]), token=world.token
            )
            (connection,) = route.connections(body["data"], world.board_id)
            assert connection["totalCount"] == len(world.real_ids[str(route)]), str(route)
            assert len(connection["edges"]) == 2, str(route)
