"""@defer and @stream: refused with one clear validation error wherever they appear (graph/incremental_delivery.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graph.schema import GenhubSchema, build_schema

SCHEMA: GenhubSchema = build_schema()

#: Where a client can put a directive in the history page's document; `@D` stands for it.
PLACES = (
    "query H { generations(first: 5) { edges { node { id ... @D { prompt } } } } }",
    "query H { generations(first: 5) { edges { node { id outputs @D { id } } } } }",
    "query H { generations(first: 5) { edges @D { node { id } } } }",
    'query H { generation(id: "x") { id ...Outputs @D } } fragment Outputs on Generation { outputs { id } }',
    'query H { generation(id: "x") { id ...Outputs } } fragment Outputs on Generation @D { outputs { id } }',
    "query H { ... @D { models { slug } } }",
)

labels = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
arguments = st.one_of(
    st.just(""),
    labels.map(lambda label: f"(label: {json.dumps(label)})"),
    st.booleans().map(lambda b: f"(if: {str(b).lower()})"),
    st.integers(min_value=-5, max_value=10**6).map(lambda n: f"(initialCount: {n})"),
    st.just("(if: $flag)"),
)


async def run(query: str) -> list[dict[str, object]]:
    result = await SCHEMA.execute(query, variable_values={"flag": False})
    assert result.data is None
    return [dict(e.formatted) for e in result.errors or []]


@settings(max_examples=60, deadline=None)
@given(place=st.sampled_from(PLACES), name=st.sampled_from(("defer", "stream")), args=arguments)
async def test_a_document_with_defer_or_stream_anywhere_gets_the_one_clear_error(
    place: str, name: str, args: str
) -> None:
    # given a document that asks for incremental delivery, wherever and however
    query = place.replace("@D", f"@{name}{args}")
    # when it is run (validation happens before any resolver or compiled read)
    errors = await run(query)
    # then it gets one error naming the directive, with the validation code, and nothing runs
    assert len(errors) == 1, errors
    error = errors[0]
    assert str(error["message"]).startswith(f"@{name} is not supported by this server")
    extensions = error["extensions"]
    assert isinstance(extensions, dict)
    assert extensions["code"] == "GRAPHQL_VALIDATION_FAILED" and extensions["unsupportedDirective"] == name
    assert error["locations"]


@pytest.mark.parametrize("directive", ["include(if: true)", "skip(if: false)", "deprecated"])
async def test_other_directives_are_judged_as_before(directive: str) -> None:
    # given the specification's directives (one misplaced) and an unknown field: graphql-core's own rules answer
    errors = await run("query Q { models @D { slug nope } }".replace("@D", f"@{directive}"))
    assert errors and all("is not supported by this server" not in str(e["message"]) for e in errors)


async def test_a_named_directive_that_only_looks_alike_is_unknown_as_before() -> None:
    errors = await run("query Q { models @deferred { slug } }")
    assert [e["message"] for e in errors] == ["Unknown directive '@deferred'."]
