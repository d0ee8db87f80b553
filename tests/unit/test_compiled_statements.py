"""Compiled statements stay bounded whatever the selection (infrastructure/db/json_reads)."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.db.json_reads import marks, roots
from infrastructure.db.json_reads.selection import NotCompilable, Selected
from infrastructure.db.json_reads.shapes import MAX_RELATION_DEPTH, SHAPES
from infrastructure.db.json_reads.sql_text import MAX_KEYS_PER_OBJECT

LEAVES = sorted(SHAPES["Generation"].leaves)


def node(width: int, depth: int) -> tuple[Selected, ...]:
    fields = [Selected(name, f"{name}{i}") for i in range(width) for name in LEAVES[:3]]
    if depth:
        fields.append(Selected("preset", "preset", (Selected("model", "model", (Selected("id", "id"),)),)))
    return tuple(fields)


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 40), roots_count=st.integers(1, 60))
def test_a_statement_is_bounded_or_not_compiled(width: int, roots_count: int) -> None:
    # given any number of root fields and any width of selection
    selected = [
        (
            Selected("generation", f"r{i}", node(width, 1)),
            roots.variant_of(roots.GenerationArgs(uuid.uuid4(), False, uuid.uuid4())),
        )
        for i in range(roots_count)
    ]
    # when it is compiled
    try:
        sql = roots.statement(selected)
    except NotCompilable:
        return
    # then the statement is within the bound and every key is a quoted literal
    assert len(sql) <= roots.MAX_STATEMENT_CHARS


def test_keys_are_quoted_as_literals() -> None:
    sql = roots.statement([(Selected("credits", "it's", (Selected("balance", "a'b"),)), ("viewer",))])
    assert "'it''s'" in sql and "'a''b'" in sql


def test_unknown_fields_and_arguments_are_not_compiled() -> None:
    with pytest.raises(NotCompilable):
        roots.statement([(Selected("adminSettings", "s", (Selected("key", "key"),)), ())])
    with pytest.raises(NotCompilable):
        roots.statement(
            [(Selected("generation", "g", (Selected("id", "id", args={"x": 1}),)), ("viewer", "admin", "id"))]
        )


def test_a_field_that_needs_per_request_values_without_them_is_not_compiled() -> None:
    # Board.invitations reads the clock, Asset.url its seconds: without a slot they do not compile
    board = Selected("boards", "b", (Selected("invitations", "i", (Selected("email", "email"),)),))
    with pytest.raises(NotCompilable):
        roots.statement([(board, ("viewer",))])
    url = Selected("outputs", "o", (Selected("url", "url", slot=3),))
    with pytest.raises(NotCompilable):
        roots.statement([(Selected("generation", "g", (url,)), ("viewer", "admin", "id"))], [("seconds",)])


def test_a_board_needs_a_viewer() -> None:
    # a root without a viewer cannot reach a board: its membership test would have nothing to compare
    board = Selected("board", "board", (Selected("id", "id"),))
    preset = Selected("presets", "p", (Selected("model", "model", (board,)),))
    with pytest.raises(NotCompilable):
        roots.statement([(preset, ())])


def test_boards_are_those_the_viewer_belongs_to_with_the_viewers_role() -> None:
    sql = roots.statement([(Selected("boards", "boards", (Selected("myRole", "myRole"),)), ("viewer",))])
    assert "JOIN board_members" in sql and ".user_id = $1::uuid" in sql
    assert "my_role" in sql


def test_invitations_are_listed_to_managers_at_the_bound_clock() -> None:
    invitations = Selected("invitations", "i", (Selected("email", "email"),), slot=0)
    generations = Selected("generations", "g", (Selected("pageInfo", "p", (Selected("hasNextPage", "h"),)),), slot=1)
    sql = roots.statement(
        [(Selected("board", "b", (invitations, generations)), ("viewer", "id"))],
        [("now",), ("first", "after_at", "after_id")],
    )
    # the root's slots come first ($1 viewer, $2 id), then the nested fields' in slot order
    assert "expires_at > $3::timestamptz" in sql
    assert "my_role IN ('owner')" in sql
    assert "LIMIT $4 + 1" in sql and "< ($5::timestamptz, $6::uuid)" in sql


def test_the_catalogue_is_ordered_by_code_points_as_the_snapshot_sorts_it() -> None:
    models = Selected("models", "m", (Selected("slug", "slug"),))
    presets = Selected("presets", "p", (Selected("name", "name"),))
    sql = roots.statement(
        [
            (models, roots.variant_of(roots.ModelsArgs(False, "image"))),
            (presets, roots.variant_of(roots.PresetsArgs(uuid.uuid4()))),
        ]
    )
    assert 'kind COLLATE "C"' in sql and 'slug COLLATE "C"' in sql and 'name COLLATE "C"' in sql
    assert "($1::boolean OR" in sql and "= $2::text" in sql and "model_id = $3::uuid" in sql


def nested_boards(levels: int) -> Selected:
    inner: tuple[Selected, ...] = (Selected("id", "id"),)
    for slot in range(levels):
        page = Selected("edges", "edges", (Selected("node", "node", inner),))
        inner = (Selected("board", "board", (Selected("generations", "generations", (page,), slot=slot),)),)
    return Selected("generation", "g", inner)


@settings(max_examples=30, deadline=None)
@given(levels=st.integers(1, 12))
def test_nested_boards_are_bounded_in_depth(levels: int) -> None:
    # given boards nested in their generations `levels` times
    root = nested_boards(levels)
    page = ("first",)
    # when it is compiled
    try:
        sql = roots.statement([(root, ("viewer", "admin", "id"))], [page] * levels)
    except NotCompilable:
        # then past the depth bound it is not compiled at all
        assert 2 * levels > MAX_RELATION_DEPTH
        return
    # and within it, the statement is bounded
    assert 2 * levels <= MAX_RELATION_DEPTH
    assert len(sql) <= roots.MAX_STATEMENT_CHARS


HOSTILE_KEYS = st.text(alphabet=st.sampled_from(['"', "\\", "/", "a", ":", "\x01", "\x02", "é", "\n"]), max_size=40)


@settings(max_examples=100, deadline=None)
@given(key=HOSTILE_KEYS, seconds=st.integers(60, 7 * 24 * 3600), prompt=HOSTILE_KEYS)
def test_url_marks_are_found_and_replaced_and_nothing_else(key: str, seconds: int, prompt: str) -> None:
    # given an answer as PostgreSQL writes it: a URL mark of a key, and stored text with marks' characters
    mark = "\x02" + marks.URL_NONCE + f":{seconds}:" + key
    fake = "\x02" + prompt + f":{seconds}:" + key
    text = json.dumps({"url": mark, "prompt": prompt, "fake": fake}, ensure_ascii=False)
    # when its URLs are found and signed
    wanted = marks.url_requests(text)
    signed = marks.with_urls(text, {request: f"https://files/{request[0]}?s={request[1]}" for request in wanted})
    # then exactly the mark became a URL, and the stored text is as it was
    assert wanted == [(key, seconds)]
    answer = json.loads(signed)
    assert answer["url"] == f"https://files/{key}?s={seconds}"
    assert answer["prompt"] == prompt and answer["fake"] == fake


def wide(level: str, width: int) -> Selected:
    """A `generations` root with `width` keys at one level: the root object, the connection, an edge or pageInfo."""
    cursors = tuple(Selected("cursor", f"c{i}") for i in range(width if level == "edge" else 1))
    infos = tuple(Selected("hasNextPage", f"h{i}") for i in range(width if level == "pageInfo" else 1))
    edges = tuple(Selected("edges", f"e{i}", cursors) for i in range(width if level == "connection" else 1))
    return Selected("generations", "g", (*edges, Selected("pageInfo", "p", infos)))


GENERATIONS = roots.variant_of(roots.GenerationsArgs(uuid.uuid4(), roots.Page(3, None)))


@settings(max_examples=80, deadline=None)
@given(level=st.sampled_from(["root", "connection", "edge", "pageInfo"]), width=st.integers(1, 120))
def test_no_object_of_a_statement_has_more_keys_than_postgresql_takes(level: str, width: int) -> None:
    # given a selection `width` keys wide at one level (json_build_object takes 100 arguments: 50 keys)
    if level == "root":
        selected = [
            (Selected("credits", f"r{i}", (Selected("balance", "balance"),)), ("viewer",)) for i in range(width)
        ]
    else:
        selected = [(wide(level, width - 1 if level == "connection" else width), GENERATIONS)]
    # when it is compiled
    try:
        sql = roots.statement(selected)
    except NotCompilable:
        # then only a selection past the bound is refused
        assert width > MAX_KEYS_PER_OBJECT
        return
    # and a statement is written only within the bound
    assert width <= MAX_KEYS_PER_OBJECT
    assert "json_build_object" in sql
