"""Compiled reads answer exactly what the resolvers answer (issue #17), on PostgreSQL.

A differential test (two generators: ours, which knows which fields compile, and hypothesis-graphql's
from the schema): generated documents (fields, nesting, aliases, fragments, `__typename`,
@include/@skip on variables), generated arguments (page sizes, cursors, filters, ids of
objects each persona may or may not see) over varied rows (every status, ties on
created_at, timestamps with and without a fraction, errors with and without a message,
params with hidden `_` keys, inputs, and outputs of every media kind whose thumbnails are made,
pending, failed, or never to be made, legacy ones without geometry among them), sent as each persona
(owner, board editor and viewer, stranger, admin, anonymous) through the HTTP endpoint
twice: with compiled reads, and with every read on the resolvers. The two answers must be
equal, and enough of the documents must really have been compiled.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries

from graph.schema import build_schema
from infrastructure.db.json_reads import roots
from tests.fixtures.app import register_user
from tests.integration.board_world import World
from tests.integration.compiled_world import EXAMPLES, PERSONAS, Rows, both_paths, compiled_world

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
async def world(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[World, Rows]]:
    async with compiled_world(postgres_dsn, tmp_path_factory.mktemp("compiled")) as (w, rows):
        yield w, rows
        if rows.examples >= 100:  # the whole differential test ran: it must have compared compiled answers
            assert rows.compiled >= rows.examples // 4, (rows.compiled, rows.examples)


# ---------------------------------------------------------------- generated documents

LEAVES = {
    "Generation": ["id", "status", "progress", "prompt", "params", "reservedCredits", "chargedCredits", "createdAt",
                   "updatedAt", "finishedAt"],
    "AiModel": ["id", "slug", "name", "provider", "kind", "costCredits", "capabilities", "isActive"],
    "Preset": ["id", "name", "params"],
    "Asset": ["id", "kind", "contentType", "size", "width", "height", "durationSeconds", "thumbnailStatus"],
    "Chunk": ["id", "filename", "contentType", "size", "sha256", "status", "createdAt"],
    "CreditBalance": ["balance", "reserved", "available"],
    "LedgerEntry": ["id", "kind", "amount", "generationId", "reason", "createdAt"],
    "GenerationError": ["code", "message"],
    "PageInfo": ["hasNextPage", "endCursor", "hasPreviousPage", "startCursor"],
}  # fmt: skip
OBJECTS = {
    "Generation": {"model": "AiModel", "preset": "Preset", "outputs": "Asset", "inputs": "Chunk", "error": "GenerationError"},
    "Preset": {"model": "AiModel"},
    "Asset": {"thumbnail": "Asset"},
}  # fmt: skip
#: Fields computed with the viewer or with values bound per request (test_compiled_boards_catalogue.py
#: generates them in depth): added now and then to the generated selections.
COMPUTED = {"Generation": ["board { id name myRole }"], "Asset": ["url", "thumbnail { id url }"], "AiModel": []}


@st.composite
def selection(draw: st.DrawFn, type_name: str, depth: int = 0) -> str:
    leaves = LEAVES[type_name]
    chosen = draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=len(leaves), unique=True))
    parts: list[str] = []
    for i, name in enumerate(chosen):
        alias = draw(st.sampled_from(["", "", f"a{i}: "]))
        directive = draw(st.sampled_from(["", "", "", " @include(if: $flag)", " @skip(if: $flag)"]))
        parts.append(f"{alias}{name}{directive}")
    if depth < 2:
        for name, target in OBJECTS.get(type_name, {}).items():
            if draw(st.booleans()):
                inner = draw(selection(target, depth + 1)) if target in OBJECTS or target in LEAVES else "id"
                parts.append(f"{name} {{ {inner} }}")
    if draw(st.integers(0, 9)) == 0 and COMPUTED.get(type_name):
        parts.append(draw(st.sampled_from(COMPUTED[type_name])))
    if draw(st.booleans()):
        parts.append("__typename")
    if draw(st.integers(0, 3)) == 0:
        half = len(parts) // 2
        parts = parts[:half] + [f"... on {type_name} {{ {' '.join(parts[half:])} }}"]
    return " ".join(parts)


@st.composite
def operation(draw: st.DrawFn, rows: Rows, world: World) -> tuple[str, dict[str, Any]]:
    root = draw(st.sampled_from(["generations", "generation", "chunks", "chunk", "credits", "creditLedger", "two"]))
    variables: dict[str, Any] = {"flag": draw(st.booleans())}
    node = draw(selection("Generation"))
    connection = f"edges {{ cursor node {{ {node} }} }} pageInfo {{ {draw(selection('PageInfo'))} }} __typename"
    if root == "generations":
        variables["first"] = draw(st.sampled_from([None, 0, 1, 3, 20, 100, 101, -1]))
        variables["after"] = draw(st.sampled_from([None, None, *rows.cursors[:6], "not a cursor", ""]))
        # backward pages (`last`/`before`) are the resolvers' to answer: both paths must agree all the same
        variables["last"] = draw(st.sampled_from([None, None, None, 0, 2, 20, 101]))
        variables["before"] = draw(st.sampled_from([None, None, None, *rows.cursors[2:8], "not a cursor"]))
        variables["filter"] = draw(
            st.sampled_from(
                [None, {}, {"status": []}, {"status": ["SUCCEEDED", "FAILED"]}, {"boardId": world.board_id},
                 {"boardId": str(uuid.uuid4())}, {"modelId": world.model_id}, {"boardId": "nope"},
                 {"status": ["QUEUED"], "boardId": world.board_id, "modelId": world.model_id}]
            )
        )  # fmt: skip
        body = (
            "generations(first: $first, after: $after, last: $last, before: $before, filter: $filter) "
            f"{{ {connection} }}"
        )
        header = "$flag: Boolean!, $first: Int, $after: String, $last: Int, $before: String, $filter: GenerationFilter"
    elif root == "generation":
        ids = [i for p in ("owner", "editor", "other") for i in rows.generation_ids[p][:5]]
        variables["id"] = draw(st.sampled_from([*ids, world.generation_id, str(uuid.uuid4()), "nope", "  "]))
        body, header = f"generation(id: $id) {{ {node} }}", "$flag: Boolean!, $id: ID!"
    elif root == "chunks":
        variables["first"] = draw(st.sampled_from([None, 0, 2, 10]))
        chunk = draw(selection("Chunk"))
        body = f"chunks(first: $first) {{ edges {{ cursor node {{ {chunk} }} }} pageInfo {{ hasNextPage endCursor }} }}"
        header = "$flag: Boolean!, $first: Int"
    elif root == "chunk":
        ids = [i for p in ("owner", "other") for i in rows.chunk_ids[p][:3]]
        variables["id"] = draw(st.sampled_from([*ids, str(uuid.uuid4()), "bad"]))
        body, header = f"chunk(id: $id) {{ {draw(selection('Chunk'))} }}", "$flag: Boolean!, $id: ID!"
    elif root == "creditLedger":
        variables["first"] = draw(st.sampled_from([None, 0, 1, 3, 50]))
        entry = draw(selection("LedgerEntry"))
        body = f"creditLedger(first: $first) {{ edges {{ cursor node {{ {entry} }} }} pageInfo {{ hasNextPage endCursor }} }}"
        header = "$flag: Boolean!, $first: Int"
    elif root == "credits":
        body, header = f"credits {{ {draw(selection('CreditBalance'))} }}", "$flag: Boolean!"
    else:
        body = f"mine: generations(first: 2) {{ {connection} }} balance: credits {{ available }}"
        header = "$flag: Boolean!"
    if "$flag" not in body:  # an unused variable is a validation error on either path
        header = ", ".join(h for h in header.split(", ") if not h.startswith("$flag"))
        variables.pop("flag")
    return (f"query Q({header}) {{ {body} }}" if header else f"query Q {{ {body} }}"), variables


@pytest.fixture
def rows(world: tuple[World, Rows]) -> Rows:
    return world[1]


@EXAMPLES
@given(data=st.data(), persona=st.sampled_from(PERSONAS))
async def test_compiled_and_resolver_answers_are_equal(
    world: tuple[World, Rows], data: st.DataObject, persona: str
) -> None:
    w, rows = world
    # given a generated read and a persona
    document, variables = data.draw(operation(rows, w))
    # when it is answered with compiled reads and by the resolvers
    before = rows.counting.runs
    compiled, resolved = await both_paths(w, persona, document, variables)
    rows.examples += 1
    rows.compiled += rows.counting.runs - before
    # then the answers are the same JSON
    assert compiled == resolved, (document, variables, persona)


MUST_COMPILE = {
    "aliases and typename": (
        "query { mine: generations(first: 3) { __typename edges { __typename c: cursor node { __typename i: id "
        "s: status model { __typename slug k: kind } } } pageInfo { __typename hasNextPage endCursor } } }",
        {},
    ),
    "fragments": (
        "query { generations(first: 4) { edges { node { ...G ... on Generation { outputs { ...A } } } } } } "
        "fragment G on Generation { id prompt error { code message } preset { name model { id } } } "
        "fragment A on Asset { id kind contentType size }",
        {},
    ),
    "directives on variables": (
        "query ($on: Boolean!) { generations(first: 2) { edges { node { id prompt @include(if: $on) "
        "params @skip(if: $on) } } } }",
        {"on": True},
    ),
    "filters": (
        "query ($b: ID) { generations(first: 5, filter: {boardId: $b, status: [QUEUED, FAILED]}) "
        "{ edges { node { id status } } pageInfo { hasNextPage } } }",
        {"b": None},
    ),
    "one generation with inputs": (
        "query ($id: ID!) { generation(id: $id) { id inputs { id status createdAt } } }",
        {},
    ),
    "the history page with thumbnails": (
        "query Grid($first: Int!) { generations(first: $first) { edges { cursor node { id status outputs { id kind "
        "contentType size width height durationSeconds thumbnailStatus url thumbnail { __typename id kind "
        "contentType size width height durationSeconds thumbnailStatus url(expiresInSeconds: 600) "
        "thumbnail { id } } } } } pageInfo { hasNextPage endCursor } } }",
        {"first": 30},
    ),
    "the ledger": (
        "query { creditLedger(first: 5) { edges { cursor node { id kind amount generationId reason createdAt } } } }",
        {},
    ),
    "a forward page's whole pageInfo": (
        "query ($after: String) { generations(first: 3, after: $after) { edges { cursor } "
        "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } "
        "creditLedger(first: 2) { pageInfo { startCursor hasPreviousPage } } }",
        {"after": None},
    ),
    "chunks and credits": (
        "query { chunks(first: 2) { edges { cursor node { id filename sha256 } } pageInfo { endCursor } } "
        "credits { balance reserved available } }",
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(MUST_COMPILE))
async def test_reads_the_compiler_describes_are_compiled(world: tuple[World, Rows], name: str) -> None:
    # given a document of compilable fields only
    w, rows = world
    document, variables = MUST_COMPILE[name]
    if "$id" in document:
        variables = {"id": rows.generation_ids["owner"][2]}
    before = rows.counting.runs
    # when the owner reads it
    compiled, resolved = await both_paths(w, "owner", document, variables)
    # then one statement answered it, with the resolvers' answer
    assert rows.counting.runs == before + 1, compiled
    assert compiled == resolved
    assert "errors" not in compiled, compiled


@pytest.mark.parametrize("order", [(True, False), (False, True)])
async def test_a_directive_inside_a_fragment_keys_the_compiled_selection(
    world: tuple[World, Rows], order: tuple[bool, bool]
) -> None:
    # given a document whose fragment (outside the operation) has @include on a variable
    w, rows = world
    document = (
        "query Page($on: Boolean!) { generations(first: 3) { edges { node { ...G } } } } "
        "fragment G on Generation { id prompt @include(if: $on) status @skip(if: $on) }"
    )
    for on in order:
        # when it is read with one value, then the other
        before = rows.counting.runs
        compiled, resolved = await both_paths(w, "owner", document, {"on": on})
        # then each answer is compiled and follows that request's value
        assert rows.counting.runs == before + 1
        assert compiled == resolved
        node = compiled["data"]["generations"]["edges"][0]["node"]
        assert ("prompt" in node, "status" in node) == (on, not on)


async def test_the_history_page_is_one_compiled_statement(world: tuple[World, Rows]) -> None:
    w, rows = world
    page = (
        "query LatestGenerations($first: Int!) { generations(first: $first) { edges { node { id status prompt "
        "createdAt model { slug costCredits } outputs { id kind size } } } } }"
    )
    before = rows.counting.runs
    compiled, resolved = await both_paths(w, "owner", page, {"first": 20})
    assert rows.counting.runs == before + 1
    assert compiled == resolved
    assert len(compiled["data"]["generations"]["edges"]) == 20


GRID = MUST_COMPILE["the history page with thumbnails"][0]


async def test_the_grid_shows_each_thumbnail_state_alike_on_both_paths(world: tuple[World, Rows]) -> None:
    # given the owner's outputs: legacy ones (with a thumbnail, or without a state), pending, made, failed,
    # videos, one with two thumbnails
    w, rows = world
    before = rows.counting.runs
    # when the grid is read on both paths
    compiled, resolved = await both_paths(w, "owner", GRID, {"first": 30})
    # then one statement answered it, as the resolvers did, with every state shown as stored
    assert rows.counting.runs == before + 1
    assert compiled == resolved
    outputs = [o for e in compiled["data"]["generations"]["edges"] for o in e["node"]["outputs"]]
    assert {o["thumbnailStatus"] for o in outputs} == {None, "PENDING", "READY", "FAILED"}
    for output in outputs:
        thumbnail = output["thumbnail"]
        assert output["kind"] == "OUTPUT"
        assert (thumbnail is not None) == (output["thumbnailStatus"] == "READY"), output
        assert (output["width"] is None) == (output["contentType"] == "image/png"), output  # the legacy ones
        assert (output["durationSeconds"] is not None) == output["contentType"].startswith("video/"), output
        if thumbnail is not None:
            assert (thumbnail["kind"], thumbnail["contentType"]) == ("THUMBNAIL", "image/webp")
            assert thumbnail["thumbnail"] is None and thumbnail["thumbnailStatus"] is None
            assert max(thumbnail["width"], thumbnail["height"]) == 512
            # each URL downloads under the generation's name; of two thumbnails, the lower position's is shown
            assert "-thumbnail.webp" in thumbnail["url"] and thumbnail["url"] != output["url"]
    chosen = [o["thumbnail"]["url"] for o in outputs if o["thumbnail"] and o["contentType"] == "video/webm"]
    assert chosen and all("-b-thumbnail.webp" in url for url in chosen)
    assert any(o["durationSeconds"] == 0.1 + 0.2 for o in outputs)
    assert any(o["width"] is None and o["thumbnail"] is not None for o in outputs)


def local(url: str) -> str:
    """A URL of the local backend, as the app under test serves it (its path and query)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


DOWNLOADS = "query ($id: ID!) { generation(id: $id) { outputs { url thumbnail { url } } } }"


async def test_outputs_and_thumbnails_download_as_attachments_named_for_their_generation(
    world: tuple[World, Rows],
) -> None:
    # given a generation's outputs stored with their thumbnails (the owner's generation 5: a WebM video with
    # two thumbnails, then a legacy PNG whose thumbnail the sweep made)
    w, rows = world
    generation_id = rows.generation_ids["owner"][5]
    conn = await asyncpg.connect(rows.dsn)
    try:
        stored = await conn.fetch(
            "SELECT object_key, content_type FROM assets WHERE generation_id = $1", uuid.UUID(generation_id)
        )
    finally:
        await conn.close()
    storage = w.client.app.state.services.chunks.storage
    for row in stored:
        await storage.put_bytes(row["object_key"], b"stand-in bytes", content_type=row["content_type"])
    # when its URLs are read on both paths and downloaded
    compiled, resolved = await both_paths(w, "owner", DOWNLOADS, {"id": generation_id})
    assert compiled == resolved
    outputs = compiled["data"]["generation"]["outputs"]
    assert len(outputs) == 2 and all(o["thumbnail"] is not None for o in outputs)
    names = []
    for url in (outputs[0]["url"], outputs[0]["thumbnail"]["url"], outputs[1]["url"], outputs[1]["thumbnail"]["url"]):
        response = await w.client.http.get(local(url))
        assert response.status_code == 200 and response.headers["x-content-type-options"] == "nosniff"
        names.append(response.headers["content-disposition"])
    # then each is an attachment named `<generation id>-<n>.<ext>` (a thumbnail's with `-thumbnail`; of the
    # video's two thumbnails, the one at the lower position)
    assert names == [
        f"attachment; filename=\"{generation_id}-0.webm\"; filename*=UTF-8''{generation_id}-0.webm",
        f"attachment; filename=\"{generation_id}-0-b-thumbnail.webp\"; filename*=UTF-8''{generation_id}-0-b-thumbnail.webp",
        f"attachment; filename=\"{generation_id}-1.png\"; filename*=UTF-8''{generation_id}-1.png",
        f"attachment; filename=\"{generation_id}-1-thumbnail.webp\"; filename*=UTF-8''{generation_id}-1-thumbnail.webp",
    ]


class FailingReads:
    """A compiled statement that fails at run time (the database refused it, say)."""

    async def fetch(self, sql: str, params: Sequence[Any]) -> str:
        raise asyncpg.exceptions.UndefinedColumnError("column g.nope does not exist")


async def test_a_failing_statement_is_answered_by_the_resolvers_and_logged(
    world: tuple[World, Rows], caplog: pytest.LogCaptureFixture
) -> None:
    # given compiled reads whose statement fails
    w, _ = world
    app = w.client.app
    services = app.state.services
    page = "query History { generations(first: 3) { edges { node { id prompt } } } }"
    expected = await w.run("owner", page)
    app.state.services = dataclasses.replace(services, json_reads=FailingReads())
    try:
        # when the page is read
        with caplog.at_level("WARNING", logger="genhub.compiled"):
            body = await w.run("owner", page)
    finally:
        app.state.services = services
    # then the resolvers answered it, and the log names the operation without the client seeing SQL
    assert body == expected
    assert any("History" in r.getMessage() for r in caplog.records)
    assert "nope" not in json.dumps(body)


async def test_a_selection_too_wide_for_one_statement_takes_the_resolver_path(
    world: tuple[World, Rows], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bound on statements, and a document whose statement would exceed it
    w, rows = world
    monkeypatch.setattr(roots, "MAX_STATEMENT_CHARS", 4000)
    node = " ".join(
        f"m{i}: model {{ id slug name provider kind costCredits capabilities isActive }} "
        f"p{i}: preset {{ id name params model {{ id slug name provider kind costCredits }} }}"
        for i in range(10)
    )
    document = f"query {{ generations(first: 5) {{ edges {{ node {{ id {node} }} }} }} }}"
    before = rows.counting.runs
    # when it is read
    compiled, resolved = await both_paths(w, "owner", document, {})
    # then no statement ran, and the answer is the resolvers'
    assert rows.counting.runs == before
    assert compiled == resolved


COMPILED_ROOTS = ["generations", "generation", "chunks", "chunk", "credits", "creditLedger"]
SCHEMA_DOCUMENTS = queries(build_schema().graphql_schema, fields=COMPILED_ROOTS)


@EXAMPLES
@given(data=st.data(), persona=st.sampled_from(PERSONAS))
async def test_documents_generated_from_the_schema_answer_alike(
    world: tuple[World, Rows], data: st.DataObject, persona: str
) -> None:
    """hypothesis-graphql's documents for the compiled roots (any arguments, any selection of the schema)."""
    w, _ = world
    # given a document hypothesis-graphql built from the schema for the compiled root fields
    document = data.draw(SCHEMA_DOCUMENTS)
    # when it is answered with compiled reads and by the resolvers
    compiled, resolved = await both_paths(w, persona, str(document), {})
    # then the answers are the same JSON
    assert compiled == resolved, (document, persona)


async def test_an_account_without_credits_reads_zeros_on_both_paths(world: tuple[World, Rows]) -> None:
    # given a new account that was never granted anything (no credit account row)
    w, rows = world
    session = await register_user(w.client, f"new-{uuid.uuid4().hex[:8]}@example.com")
    w.tokens["newcomer"] = session["accessToken"]
    try:
        before = rows.counting.runs
        # when its balance is read
        compiled, resolved = await both_paths(w, "newcomer", "query { credits { balance reserved available } }", {})
    finally:
        del w.tokens["newcomer"]
    # then one statement answered zeros, as the resolvers do
    assert rows.counting.runs == before + 1
    assert compiled == resolved == {"data": {"credits": {"balance": 0, "reserved": 0, "available": 0}}}


HOSTILE = st.text(
    alphabet=st.sampled_from(["\x01", '"', "\\", ":", "0", "a", "f", "-", "é", "\u2028", " ", *roots.CURSOR_NONCE[:4]]),
    max_size=80,
).map(lambda t: "\x01" + t)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(prompt=HOSTILE, tail=st.sampled_from(["", ":1:" + str(uuid.UUID(int=1)), ":99999999999:" + str(uuid.uuid4())]))
async def test_stored_text_that_looks_like_a_cursor_mark_is_shown_as_stored(
    world: tuple[World, Rows], prompt: str, tail: str
) -> None:
    # given a prompt made to look like the statement's cursor marks (without this process's nonce)
    w, rows = world
    stored = prompt + tail
    generation_id = uuid.UUID(rows.generation_ids["owner"][0])
    conn = await asyncpg.connect(rows.dsn)
    try:
        await conn.execute("UPDATE generations SET prompt = $1 WHERE id = $2", stored, generation_id)
    finally:
        await conn.close()
    # when the owner reads it with cursors on both paths
    document = "query ($id: ID!) { generation(id: $id) { prompt } generations(first: 30) { edges { cursor node { id prompt } } } }"
    compiled, resolved = await both_paths(w, "owner", document, {"id": str(generation_id)})
    # then it comes back exactly as stored, and the answers are equal
    assert compiled == resolved
    assert compiled["data"]["generation"]["prompt"] == stored


BACKWARD = (
    "query ($last: Int, $before: String, $first: Int, $after: String) { generations(last: $last, "
    "before: $before, first: $first, after: $after) { edges { cursor node { id prompt } } "
    "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"
)


@pytest.mark.parametrize(
    "paging",
    [
        {"last": 3},
        {"last": 2, "before": 4},
        {"before": 5},
        {"first": 2, "before": 5},
        {"first": 2, "after": 1, "before": 5},
        {"last": 0},
    ],
)
async def test_backward_pages_are_answered_by_the_resolvers_alike(
    world: tuple[World, Rows], paging: dict[str, int]
) -> None:
    # given a page that names `last` or `before` (which the compiled path leaves to the resolvers)
    w, rows = world
    variables: dict[str, Any] = {
        name: rows.cursors[value] if name in ("after", "before") else value for name, value in paging.items()
    }
    before = rows.counting.runs
    # when the owner reads it
    compiled, resolved = await both_paths(w, "owner", BACKWARD, variables)
    # then no statement was compiled for it, and the answer is the resolvers' own
    assert rows.counting.runs == before, compiled
    assert compiled == resolved and "errors" not in compiled, compiled
