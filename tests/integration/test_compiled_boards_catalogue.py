"""Compiled reads of boards, the catalogue and signed URLs answer exactly what the resolvers answer.

The same differential test as test_compiled_reads.py (world and personas from compiled_world.py,
plus a newcomer with no board and no credits), for the roots `boards`, `board(id)`, `models`,
`presets` and the fields `Generation.board`, `Board.members/invitations/generations(first,
after)` and `Asset.url(expiresInSeconds)` (of outputs and of their thumbnails): generated documents and arguments (ours, and
hypothesis-graphql's from the schema), both paths, equal JSON. URLs are signed at one fixed
time on both paths (compiled_world.SIGNING_TIME), so they compare byte for byte.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries

from graph.schema import build_schema
from infrastructure.db.json_reads import marks, roots
from tests.fixtures.app import register_user
from tests.integration.board_world import World
from tests.integration.compiled_world import EXAMPLES, PERSONAS, Rows, both_paths, compiled_world

pytestmark = pytest.mark.postgres

ALL_PERSONAS = (*PERSONAS, "newcomer")


@pytest.fixture(scope="module")
async def world(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[World, Rows]]:
    async with compiled_world(postgres_dsn, tmp_path_factory.mktemp("compiled-boards")) as (w, rows):
        session = await register_user(w.client, "newcomer@example.com")
        w.tokens["newcomer"] = session["accessToken"]
        yield w, rows
        if rows.examples >= 100:  # the whole differential test ran: it must have compared compiled answers
            assert rows.compiled >= rows.examples // 4, (rows.compiled, rows.examples)


# ---------------------------------------------------------------- generated documents

GENERATION_LEAVES = ["id", "status", "prompt", "params", "createdAt", "finishedAt", "progress"]
BOARD_LEAVES = ["id", "name", "myRole"]
USER_LEAVES = ["id", "email", "role", "createdAt"]
INVITATION_LEAVES = ["boardId", "boardName", "email", "role", "createdAt", "expiresAt"]
MODEL_LEAVES = ["id", "slug", "name", "provider", "kind", "costCredits", "capabilities", "isActive"]
PRESET_LEAVES = ["id", "name", "params"]


@st.composite
def leaves(draw: st.DrawFn, names: list[str]) -> list[str]:
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    parts = []
    for i, name in enumerate(chosen):
        alias = draw(st.sampled_from(["", "", f"x{i}: "]))
        directive = draw(st.sampled_from(["", "", "", " @include(if: $flag)", " @skip(if: $flag)"]))
        parts.append(f"{alias}{name}{directive}")
    if draw(st.booleans()):
        parts.append("__typename")
    return parts


def wrapped(parts: list[str], type_name: str, spread: bool) -> str:
    if spread and len(parts) > 1:
        half = len(parts) // 2
        return " ".join(parts[:half]) + f" ... on {type_name} {{ {' '.join(parts[half:])} }}"
    return " ".join(parts)


ASSET_LEAVES = ["id", "kind", "size", "contentType", "width", "height", "durationSeconds", "thumbnailStatus"]


@st.composite
def asset_selection(draw: st.DrawFn, depth: int = 0) -> str:
    parts = draw(leaves(ASSET_LEAVES))
    for i in range(draw(st.integers(0, 2))):
        argument = draw(st.sampled_from(["", "(expiresInSeconds: $seconds)", "(expiresInSeconds: 60)"]))
        parts.append(f"u{i}: url{argument}")
    if depth == 0 and draw(st.booleans()):
        parts.append(f"thumbnail {{ {draw(asset_selection(depth + 1))} }}")
    return " ".join(parts)


@st.composite
def generation_selection(draw: st.DrawFn, depth: int) -> str:
    parts = draw(leaves(GENERATION_LEAVES))
    if draw(st.booleans()):
        parts.append(f"outputs {{ {draw(asset_selection())} }}")
    if depth < 2 and draw(st.booleans()):
        parts.append(f"board {{ {draw(board_selection(depth + 1))} }}")
    if draw(st.booleans()):
        parts.append(f"model {{ {' '.join(draw(leaves(MODEL_LEAVES)))} }}")
    return wrapped(parts, "Generation", draw(st.booleans()))


@st.composite
def board_selection(draw: st.DrawFn, depth: int = 0) -> str:
    parts = draw(leaves(BOARD_LEAVES))
    if draw(st.booleans()):
        user = f" user {{ {' '.join(draw(leaves(USER_LEAVES)))} }}" if draw(st.booleans()) else ""
        parts.append(f"members {{ role{user} }}")
    if draw(st.booleans()):
        parts.append(f"invitations {{ {' '.join(draw(leaves(INVITATION_LEAVES)))} }}")
    if depth < 2 and draw(st.booleans()):
        arguments = draw(
            st.sampled_from(
                [
                    "",
                    "(first: $boardFirst, after: $boardAfter)",
                    "(first: 2)",
                    # backward pages: the resolvers answer them (the compiled path takes none)
                    "(last: $boardLast, before: $boardBefore)",
                    "(last: 2)",
                ]
            )
        )
        node = draw(generation_selection(depth + 1))
        info = " ".join(draw(leaves(["hasNextPage", "endCursor", "hasPreviousPage", "startCursor"])))
        parts.append(f"generations{arguments} {{ edges {{ cursor node {{ {node} }} }} pageInfo {{ {info} }} }}")
    return wrapped(parts, "Board", draw(st.booleans()))


VARIABLE_TYPES = {
    "flag": "Boolean!",
    "boardFirst": "Int",
    "boardAfter": "String",
    "boardLast": "Int",
    "boardBefore": "String",
    "seconds": "Int",
    "id": "ID!",
    "kind": "ModelKind",
    "all": "Boolean!",
    "model": "ID",
    "first": "Int",
}


@st.composite
def operation(draw: st.DrawFn, rows: Rows, world: World) -> tuple[str, dict[str, Any]]:
    root = draw(st.sampled_from(["boards", "board", "models", "presets", "history", "generation", "mixed"]))
    if root == "boards":
        body = f"boards {{ {draw(board_selection())} }}"
    elif root == "board":
        body = f"board(id: $id) {{ {draw(board_selection())} }}"
    elif root == "models":
        body = f"models(kind: $kind, includeInactive: $all) {{ {' '.join(draw(leaves(MODEL_LEAVES)))} }}"
    elif root == "presets":
        model = f" model {{ {' '.join(draw(leaves(MODEL_LEAVES)))} }}" if draw(st.booleans()) else ""
        body = f"presets(modelId: $model) {{ {' '.join(draw(leaves(PRESET_LEAVES)))}{model} }}"
    elif root == "history":
        body = f"generations(first: $first) {{ edges {{ node {{ {draw(generation_selection(0))} }} }} }}"
    elif root == "generation":
        body = f"generation(id: $id) {{ {draw(generation_selection(0))} }}"
    else:
        body = "b: boards { id } m: models { slug } p: presets { name } g: generation(id: $id) { board { id } }"
    generation_ids = [i for p in ("owner", "editor", "other") for i in rows.generation_ids[p][:3]]
    choices: dict[str, list[Any]] = {
        "flag": [True, False],
        "boardFirst": [None, 0, 1, 3, 100, 101, -1],
        "boardAfter": [None, None, *rows.cursors[:4], "not a cursor", ""],
        "boardLast": [None, 0, 1, 3, 101],
        "boardBefore": [None, None, *rows.cursors[1:5], "not a cursor"],
        "seconds": [None, 0, 59, 60, 3600, 7 * 24 * 3600 + 1, -5],
        "kind": [None, "IMAGE", "VIDEO"],
        "all": [False, False, True],
        "model": [None, *rows.extra["models"][:3], str(uuid.uuid4()), "bad"],
        "first": [None, 3, 20],
    }
    if root == "generation" or root == "mixed":
        choices["id"] = [*generation_ids, world.generation_id, str(uuid.uuid4()), "nope"]
    else:
        choices["id"] = [*rows.extra["boards"], str(uuid.uuid4()), "nope"]
    used = [name for name in VARIABLE_TYPES if re.search(rf"\${name}\b", body)]
    variables = {name: draw(st.sampled_from(choices[name])) for name in used}
    header = ", ".join(f"${name}: {VARIABLE_TYPES[name]}" for name in used)
    return (f"query Q({header}) {{ {body} }}" if header else f"query Q {{ {body} }}"), variables


@EXAMPLES
@given(data=st.data(), persona=st.sampled_from(ALL_PERSONAS))
async def test_compiled_and_resolver_answers_are_equal(
    world: tuple[World, Rows], data: st.DataObject, persona: str
) -> None:
    w, rows = world
    # given a generated read of boards, the catalogue or signed URLs, and a persona
    document, variables = data.draw(operation(rows, w))
    # when it is answered with compiled reads and by the resolvers
    before = rows.counting.runs
    compiled, resolved = await both_paths(w, persona, document, variables)
    rows.examples += 1
    rows.compiled += rows.counting.runs - before
    # then the answers are the same JSON
    assert compiled == resolved, (document, variables, persona)


NEW_ROOTS = ["boards", "board", "models", "presets"]
SCHEMA_DOCUMENTS = queries(build_schema().graphql_schema, fields=NEW_ROOTS)


@EXAMPLES
@given(data=st.data(), persona=st.sampled_from(ALL_PERSONAS))
async def test_documents_generated_from_the_schema_answer_alike(
    world: tuple[World, Rows], data: st.DataObject, persona: str
) -> None:
    """hypothesis-graphql's documents for the board and catalogue roots (any arguments and selection)."""
    w, _ = world
    # given a document hypothesis-graphql built from the schema for these root fields
    document = data.draw(SCHEMA_DOCUMENTS)
    # when it is answered with compiled reads and by the resolvers
    compiled, resolved = await both_paths(w, persona, str(document), {})
    # then the answers are the same JSON
    assert compiled == resolved, (document, persona)


# ---------------------------------------------------------------- what must compile

BOARD_EVERYTHING = (
    "id name myRole __typename members { __typename role user { __typename id email role createdAt } } "
    "invitations { __typename boardId boardName email role createdAt expiresAt } "
    "generations(first: $n, after: $after) { __typename edges { __typename cursor node { id prompt "
    "board { id myRole } outputs { id url short: url(expiresInSeconds: 60) } } } "
    "pageInfo { __typename hasNextPage endCursor } }"
)
MUST_COMPILE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "every board field": ("owner", f"query ($n: Int, $after: String) {{ boards {{ {BOARD_EVERYTHING} }} }}", {}),
    "one board, a later page": (
        "owner",
        f"query ($id: ID!, $n: Int, $after: String) {{ board(id: $id) {{ {BOARD_EVERYTHING} }} }}",
        {"n": 2},
    ),
    "a viewer's board": ("viewer", f"query ($n: Int, $after: String) {{ boards {{ {BOARD_EVERYTHING} }} }}", {}),
    "the history page with boards and URLs": (
        "editor",
        "query { generations(first: 10) { edges { node { id board { id name myRole members { role } } "
        "outputs { id kind url(expiresInSeconds: 120) thumbnail { url(expiresInSeconds: 120) } } } } } }",
        {},
    ),
    "the catalogue": (
        "other",
        "query { models { __typename id slug name provider kind costCredits capabilities isActive } "
        "presets { __typename id name params model { id slug isActive } } }",
        {},
    ),
    "the catalogue, filtered": (
        "viewer",
        "query ($k: ModelKind, $m: ID) { models(kind: $k) { slug } presets(modelId: $m) { name } }",
        {"k": "VIDEO"},
    ),
    "inactive models for an admin": ("admin", "query { models(includeInactive: true) { slug isActive } }", {}),
    "a newcomer's empty boards": ("newcomer", "query { boards { id } models { slug } }", {}),
}


@pytest.mark.parametrize("name", sorted(MUST_COMPILE))
async def test_reads_the_compiler_describes_are_compiled(world: tuple[World, Rows], name: str) -> None:
    # given a document of compilable fields only, and who reads it
    w, rows = world
    persona, document, variables = MUST_COMPILE[name]
    variables = dict(variables)
    if "$id" in document:
        variables["id"] = w.board_id
    if "$m" in document:
        variables["m"] = rows.extra["models"][0]
    before = rows.counting.runs
    # when it is read
    compiled, resolved = await both_paths(w, persona, document, variables)
    # then one statement answered it, with the resolvers' answer
    assert rows.counting.runs == before + 1, compiled
    assert compiled == resolved
    assert "errors" not in compiled, compiled


async def test_a_board_page_follows_its_cursor_on_both_paths(world: tuple[World, Rows]) -> None:
    # given the first page of the shared board's generations
    w, rows = world
    document = (
        "query ($id: ID!, $after: String) { board(id: $id) { generations(first: 2, after: $after) "
        "{ edges { cursor node { id } } pageInfo { hasNextPage endCursor } } } }"
    )
    first, _ = await both_paths(w, "viewer", document, {"id": w.board_id})
    after = first["data"]["board"]["generations"]["pageInfo"]["endCursor"]
    before = rows.counting.runs
    # when the next page is read with its end cursor
    compiled, resolved = await both_paths(w, "viewer", document, {"id": w.board_id, "after": after})
    # then it was compiled, equal, and continues where the first page ended
    assert rows.counting.runs == before + 1
    assert compiled == resolved
    seen = {e["node"]["id"] for e in first["data"]["board"]["generations"]["edges"]}
    assert seen.isdisjoint({e["node"]["id"] for e in compiled["data"]["board"]["generations"]["edges"]})


# ---------------------------------------------------------------- authorization on the compiled path

BOARD_VIEW = (
    "query ($id: ID!) { board(id: $id) { myRole invitations { email } generations { edges { node { id } } } } }"
)
GENERATION_BOARD = "query ($id: ID!) { generation(id: $id) { id board { id myRole } } }"


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("owner", {"myRole": "OWNER", "invitations": 2}),
        ("editor", {"myRole": "EDITOR", "invitations": 0}),
        ("viewer", {"myRole": "VIEWER", "invitations": 0}),
        ("other", None),
        ("admin", None),
        ("newcomer", None),
    ],
)
async def test_a_board_is_shown_to_its_members_only(
    world: tuple[World, Rows], persona: str, expected: dict[str, Any] | None
) -> None:
    # given the shared board (two open invitations and one expired)
    w, rows = world
    before = rows.counting.runs
    # when a persona reads it
    compiled, resolved = await both_paths(w, persona, BOARD_VIEW, {"id": w.board_id})
    # then the statement answered it as the resolvers do: members see it, invitations only its OWNER
    assert rows.counting.runs == before + 1
    assert compiled == resolved
    board = compiled["data"]["board"]
    if expected is None:
        assert board is None
    else:
        assert board["myRole"] == expected["myRole"]
        assert len(board["invitations"]) == expected["invitations"]
        assert board["generations"]["edges"]


@pytest.mark.parametrize(("persona", "sees_board"), [("owner", True), ("viewer", True), ("admin", False)])
async def test_a_generation_shows_its_board_to_members_only(
    world: tuple[World, Rows], persona: str, sees_board: bool
) -> None:
    # given the owner's generation in the shared board (an admin reads it but is no member)
    w, rows = world
    before = rows.counting.runs
    # when a persona reads the generation with its board
    compiled, resolved = await both_paths(w, persona, GENERATION_BOARD, {"id": w.generation_id})
    # then its board is there for members and null for the admin
    assert rows.counting.runs == before + 1
    assert compiled == resolved
    assert (compiled["data"]["generation"]["board"] is not None) is sees_board


@pytest.mark.parametrize("persona", ["owner", "other", "anonymous"])
async def test_inactive_models_are_refused_to_non_admins_by_the_resolvers(
    world: tuple[World, Rows], persona: str
) -> None:
    # given a request for inactive models from someone who is not an admin
    w, rows = world
    before = rows.counting.runs
    # when it is read
    compiled, resolved = await both_paths(w, persona, "query { models(includeInactive: true) { slug } }", {})
    # then no statement ran: the resolvers refused it, on both paths alike
    assert rows.counting.runs == before
    assert compiled == resolved
    assert compiled["errors"]


# ---------------------------------------------------------------- bounds, and stored text posing as marks


async def test_a_wide_board_selection_takes_the_resolver_path(
    world: tuple[World, Rows], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bound on statements, and a board selection whose statement would exceed it
    w, rows = world
    monkeypatch.setattr(roots, "MAX_STATEMENT_CHARS", 6000)
    wide = " ".join(
        f"m{i}: members {{ role user {{ id email role createdAt }} }} "
        f"g{i}: generations(first: 2) {{ edges {{ node {{ id model {{ slug name kind }} }} }} }}"
        for i in range(8)
    )
    before = rows.counting.runs
    # when it is read
    compiled, resolved = await both_paths(w, "owner", f"query {{ boards {{ id {wide} }} }}", {})
    # then no statement ran, and the answer is the resolvers'
    assert rows.counting.runs == before
    assert compiled == resolved


async def test_boards_nested_past_the_depth_bound_take_the_resolver_path(world: tuple[World, Rows]) -> None:
    # given boards nested in generations nested in boards, deeper than a statement may nest
    w, rows = world
    inner = "id"
    for _ in range(5):
        inner = f"id board {{ id generations(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}"
    before = rows.counting.runs
    # when it is read
    compiled, resolved = await both_paths(
        w, "owner", f"query {{ generations(first: 2) {{ edges {{ node {{ {inner} }} }} }} }}", {}
    )
    # then no statement ran (the document limits may refuse it first), and both paths agree
    assert rows.counting.runs == before
    assert compiled == resolved


MARKS = st.text(
    alphabet=st.sampled_from(["\x01", "\x02", '"', "\\", ":", "0", "9", "a", "/", "é", " ", *marks.URL_NONCE[:4]]),
    max_size=60,
).map(lambda t: "\x02" + t)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(text=MARKS, tail=st.sampled_from(["", ":3600:outputs/x/0", ":60:" + str(uuid.uuid4())]))
async def test_stored_text_that_looks_like_a_url_mark_is_shown_as_stored(
    world: tuple[World, Rows], text: str, tail: str
) -> None:
    # given a prompt and a board name made to look like the statement's URL marks (without the nonce)
    w, rows = world
    stored = text + tail
    generation_id = uuid.UUID(w.generation_id)
    conn = await asyncpg.connect(rows.dsn)
    try:
        await conn.execute("UPDATE generations SET prompt = $1 WHERE id = $2", stored, generation_id)
        await conn.execute("UPDATE boards SET name = $1 WHERE id = $2", stored[:120], uuid.UUID(w.board_id))
    finally:
        await conn.close()
    # when the owner reads them along with signed URLs on both paths
    document = (
        "query ($id: ID!) { generation(id: $id) { prompt board { name } } "
        "generations(first: 30) { edges { node { prompt outputs { url } } } } }"
    )
    compiled, resolved = await both_paths(w, "owner", document, {"id": str(generation_id)})
    # then they come back exactly as stored, and the answers are equal
    assert compiled == resolved
    assert compiled["data"]["generation"]["prompt"] == stored
    assert compiled["data"]["generation"]["board"]["name"] == stored[:120]
