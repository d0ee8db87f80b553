"""`infrastructure.json_input.loads`: client JSON is refused past MAX_DEPTH without recursion, and only ever with JsonInputError."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.json_input import MAX_DEPTH, JsonInputError, loads, nesting_depth

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(value=JSON_VALUES, indent=st.none() | st.integers(0, 2), ascii_only=st.booleans())
def test_the_count_is_the_depth_of_any_json_value(value: Any, indent: int | None, ascii_only: bool) -> None:
    # given a JSON text (strings full of brackets and escaped quotes included)
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    # then the linear count finds its nesting, and loads reads it back
    assert nesting_depth(text) == depth(value)
    assert loads(text) == value or depth(value) > MAX_DEPTH


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(text=st.text(alphabet='[]{}"\\:,1 ae\n', max_size=400) | st.binary(max_size=200))
def test_any_input_is_decoded_or_refused_with_a_json_input_error(text: str | bytes) -> None:
    try:
        loads(text)
    except JsonInputError as exc:
        assert str(exc)


@pytest.mark.parametrize(
    ("opener", "closer", "levels"), [("[", "]", 1), ('{"a":', "}", 1), ('{"":[', "]}", 2), ('["{",', "]", 1)]
)
def test_nesting_is_refused_one_level_past_the_limit_only(opener: str, closer: str, levels: int) -> None:
    # given nestings exactly at the limit, and just past it
    at_limit = MAX_DEPTH // levels
    deeper = at_limit + 1
    # then the first is read and the second refused
    assert loads(opener * at_limit + "1" + closer * at_limit) is not None
    with pytest.raises(JsonInputError, match=f"deeper than {MAX_DEPTH}"):
        loads(opener * deeper + "1" + closer * deeper)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        '{"a":' * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '"' + '\\"[' * 50_000,  # unterminated string of escaped quotes: linear, and inside a string
        '["' + "[" * 100_000 + '",' + "[" * 100 + "]" * 101,
    ],
)
def test_what_would_recurse_in_the_parser_is_refused_before_it(text: str) -> None:
    with pytest.raises(JsonInputError):
        loads(text)


def test_brackets_inside_strings_do_not_count() -> None:
    assert nesting_depth('["' + "[" * 1000 + '"]') == 1
    assert loads('["' + "[" * 1000 + '"]') == ["[" * 1000]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("NaN", "NaN is not JSON"),
        ("[Infinity]", "Infinity is not JSON"),
        ("1e999", "out of range"),
        ("9" * 5000, "4300"),
        (b'["\xff"]', "not valid UTF-8"),
        ("[1,]", "invalid JSON"),
    ],
)
def test_what_json_cannot_carry_is_refused_as_before(text: str | bytes, reason: str) -> None:
    with pytest.raises(JsonInputError, match=reason):
        loads(text)
