"""The HTTP body: a compiled read's JSON text is written in as it is, and the body is the same JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from graph.compiled_reads import RawJSON
from graph.http import encode

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20
)
datas = st.dictionaries(st.text(min_size=1), documents, max_size=4)
payloads = st.fixed_dictionaries(
    {"data": datas},
    optional={"errors": st.lists(st.fixed_dictionaries({"message": st.text()}), max_size=2), "extensions": datas},
)


def as_raw(payload: dict[str, Any], spaced: bool) -> dict[str, Any]:
    # PostgreSQL's json_build_object writes `"key" : value, ...`: any valid JSON text must do.
    text = json.dumps(payload["data"], separators=(", ", " : ") if spaced else (",", ":"))
    return {**payload, "data": RawJSON(text)}


@settings(max_examples=200, deadline=None)
@given(payload=payloads, spaced=st.booleans())
def test_a_raw_answer_encodes_to_the_same_json(payload: dict[str, Any], spaced: bool) -> None:
    assert json.loads(encode(as_raw(payload, spaced))) == json.loads(encode(payload))


@settings(max_examples=50, deadline=None)
@given(batch=st.lists(payloads, max_size=4), raw=st.lists(st.booleans(), min_size=4, max_size=4))
def test_a_batch_mixes_raw_and_built_answers(batch: list[dict[str, Any]], raw: list[bool]) -> None:
    mixed = [as_raw(p, True) if r else p for p, r in zip(batch, raw, strict=False)]
    assert json.loads(encode(mixed)) == json.loads(json.dumps(batch))


def test_the_raw_text_is_not_quoted() -> None:
    assert encode({"data": RawJSON('{"a" : 1}')}) == b'{"data":{"a" : 1}}'
    assert encode({"data": RawJSON("{}"), "errors": []}) == b'{"data":{},"errors":[]}'
