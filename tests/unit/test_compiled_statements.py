"""Compiled statements stay bounded whatever the selection (infrastructure/db/json_reads)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.db.json_reads import roots
from infrastructure.db.json_reads.selection import NotCompilable, Selected
from infrastructure.db.json_reads.shapes import SHAPES

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
        roots.statement([(Selected("boards", "boards", (Selected("id", "id"),)), ("viewer",))])
    with pytest.raises(NotCompilable):
        roots.statement(
            [
                (
                    Selected("generation", "g", (Selected("board", "board", (Selected("id", "id"),)),)),
                    ("viewer", "admin", "id"),
                )
            ]
        )
    with pytest.raises(NotCompilable):
        roots.statement(
            [(Selected("generation", "g", (Selected("id", "id", args={"x": 1}),)), ("viewer", "admin", "id"))]
        )
