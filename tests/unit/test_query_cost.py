"""The per-operation cost: fields times the `first` of every connection above them."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.pagination import MAX_PAGE_SIZE
from graph.common.node import MAX_NODES
from graph.query_cost import fixed_cost, least_cost, operation_cost
from graph.schema import build_schema
from infrastructure.settings import Settings

SCHEMA = build_schema().graphql_schema


def parts(query: str) -> tuple[OperationDefinitionNode, dict[str, FragmentDefinitionNode]]:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return operation, {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    return operation_cost(SCHEMA, *parts(query), variables or {})


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        ("{ me { id email } }", None, 3),
        # generations(1) + edges(20) + node(20) + id(20): the default page is 20
        ("{ generations { edges { node { id } } } }", None, 61),
        ("{ generations(first: 2) { edges { node { id } } } }", None, 7),
        ("query Q($n: Int) { generations(first: $n) { edges { node { id } } } }", {"n": 5}, 16),
        ("query Q($n: Int = 3) { generations(first: $n) { edges { node { id } } } }", None, 10),
        # a null page size is the default page, as the resolvers read it
        ("query Q($n: Int) { generations(first: $n) { edges { node { id } } } }", {"n": None}, 61),
        ("{ generations(first: null) { edges { node { id } } } }", None, 61),
        # a backward page costs its `last`; both given (refused by the resolvers) the larger
        ("{ generations(last: 2) { edges { node { id } } } }", None, 7),
        ("query Q($n: Int) { generations(last: $n) { edges { node { id } } } }", {"n": 5}, 16),
        ("query Q($f: Int, $l: Int) { generations(first: $f, last: $l) { edges { node { id } } } }", {"l": 4}, 13),
        ("{ generations(first: 2, last: 5) { edges { node { id } } } }", None, 16),
        ("{ generations(first: 1, last: 1000) { edges { node { id } } } }", None, 301),
        ("{ generations(first: 0) { edges { node { id } } } }", None, 1),
        # nesting multiplies
        (
            "{ generations(first: 10) { edges { node { board { generations(first: 10) { edges { node { id } } } } } } } }",
            None,
            1 + 10 + 10 + 10 + 10 + 100 + 100 + 100,
        ),
        # fragments and inline fragments count like the fields they hold
        ("{ me { ...U } } fragment U on User { id email }", None, 3),
        ('mutation { login(input: {email: "a", password: "b"}) { ... on AuthPayload { user { id } } } }', None, 3),
        # introspection is bounded by the schema and free
        ("{ __schema { types { name fields { name } } } }", None, 0),
    ],
)
def test_cost(query: str, variables: dict[str, Any] | None, expected: int) -> None:
    assert cost(query, variables) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ me { id email } }", 3),
        ("{ generations(first: 2) { edges { node { id } } } }", 7),
        ("{ me { ...U } } fragment U on User { id email }", 3),
        # a variable that is not a page size does not decide the cost
        ("mutation G($input: GenerateInput!) { generate(input: $input) { __typename } }", 1),
        # a page size from a variable (with or without a default) is known only per request
        ("query Q($n: Int) { generations(first: $n) { edges { node { id } } } }", None),
        ("query Q($n: Int = 3) { generations(first: $n) { edges { node { id } } } }", None),
        ("query Q($n: Int) { ...G } fragment G on Query { generations(first: $n) { edges { node { id } } } }", None),
    ],
)
def test_fixed_cost_is_known_only_when_no_variable_decides_it(query: str, expected: int | None) -> None:
    assert fixed_cost(SCHEMA, *parts(query)) == expected


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ generations(first: 1000) { edges { cursor node { id status } } } }", None),
        ("{ generations(first: 99999999) { edges { cursor node { id status } } } }", None),
        ("query Q($n: Int) { generations(first: $n) { edges { cursor node { id status } } } }", {"n": 1000}),
        ("query Q($n: Int = 1000) { generations(first: $n) { edges { cursor node { id status } } } }", None),
    ],
)
def test_a_page_over_the_cap_is_costed_as_the_largest_page(query: str, variables: dict[str, Any] | None) -> None:
    # given a connection asked for more than MAX_PAGE_SIZE items
    # when its cost is estimated
    estimated = cost(query, variables)
    # then it is costed as the largest page the resolver can return (which refuses the `first` itself)
    assert (
        estimated
        == 1 + MAX_PAGE_SIZE * 5
        == cost(f"{{ generations(first: {MAX_PAGE_SIZE}) {{ edges {{ cursor node {{ id status }} }} }} }}")
    )


def test_nested_pages_over_the_cap_are_still_costly() -> None:
    # given pages over the cap nested in each other
    query = (
        "{ generations(first: 1000) { edges { node { board {"
        " generations(first: 1000) { edges { node { id } } } } } } } }"
    )
    # when the cost is estimated
    estimated = cost(query)
    # then the clamped pages still multiply: 100 * 100 leaves it far over the default limit of 5000
    outer, inner = MAX_PAGE_SIZE, MAX_PAGE_SIZE * MAX_PAGE_SIZE
    assert estimated == 1 + outer * 4 + inner * 3
    assert estimated > Settings.model_fields["max_query_cost"].default


# `nodes` resolves this selection once per id: id, __typename (free), status and its generation's id
NODE_SELECTION = "{ __typename id ... on Generation { status } ... on Board { name } }"
PER_NODE = 1 + 2  # id, and at most one of the inline fragments (each counted: 2)


def _ids(count: int) -> list[str]:
    return [f"00000000-0000-0000-0000-{n:012d}" for n in range(count)]


def _literal(ids: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in ids) + "]"


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=3 * MAX_NODES), min_size=1, max_size=4))
def test_nodes_costs_its_selection_once_per_id_up_to_the_most_it_takes(sizes: list[int]) -> None:
    # given aliased `nodes` calls, each with its own number of ids, as literals and as variables
    literal = " ".join(f"n{k}: nodes(ids: {_literal(_ids(n))}) {NODE_SELECTION}" for k, n in enumerate(sizes))
    declared = ", ".join(f"$ids{k}: [ID!]!" for k in range(len(sizes)))
    by_variable = " ".join(f"n{k}: nodes(ids: $ids{k}) {NODE_SELECTION}" for k in range(len(sizes)))
    variables: dict[str, Any] = {f"ids{k}": _ids(n) for k, n in enumerate(sizes)}
    # when their cost is estimated
    expected = sum(1 + min(n, MAX_NODES) * PER_NODE for n in sizes)
    # then each selection counts once per id, an over-long list as the longest the resolver takes
    assert cost("{ " + literal + " }") == expected
    assert cost(f"query Q({declared}) {{ {by_variable} }}", variables) == expected
    # and through a fragment spread, the same
    spread = f"query Q({declared}) {{ ...F }} fragment F on Query {{ {by_variable} }}"
    assert cost(spread, variables) == expected


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        # the default of the variable when none is sent
        (f'query Q($ids: [ID!]! = ["a", "b", "c"]) {{ nodes(ids: $ids) {NODE_SELECTION} }}', None, 1 + 3 * PER_NODE),
        (f'query Q($ids: [ID!]! = ["a", "b", "c"]) {{ nodes(ids: $ids) {NODE_SELECTION} }}', {"ids": ["a"]}, 4),
        # one id where a list is expected is coerced to a list of one
        (f'{{ nodes(ids: "a") {NODE_SELECTION} }}', None, 1 + PER_NODE),
        (f"query Q($ids: [ID!]!) {{ nodes(ids: $ids) {NODE_SELECTION} }}", {"ids": "a"}, 1 + PER_NODE),
        # a variable not sent, or a value no coercion accepts: as the longest list
        (f"query Q($ids: [ID!]!) {{ nodes(ids: $ids) {NODE_SELECTION} }}", None, 1 + MAX_NODES * PER_NODE),
        (f"query Q($ids: [ID!]!) {{ nodes(ids: $ids) {NODE_SELECTION} }}", {"ids": {"a": 1}}, 1 + MAX_NODES * PER_NODE),
        (f"query Q($ids: [ID!]!) {{ nodes(ids: $ids) {NODE_SELECTION} }}", {"ids": None}, 1),
        # the nested page sizes multiply with the ids
        (
            f"{{ nodes(ids: {_literal(_ids(5))}) {{ ... on Board {{ generations(first: 10) {{ edges {{ node {{ id }} }} }} }} }} }}",
            None,
            1 + 5 * (1 + 10 * 3),
        ),
        # `node(id:)` is one object
        ('{ node(id: "a") { id } }', None, 2),
    ],
)
def test_nodes_cost(query: str, variables: dict[str, Any] | None, expected: int) -> None:
    assert cost(query, variables) == expected


def test_nodes_cost_is_known_per_request_when_a_variable_gives_the_ids() -> None:
    literal = f"{{ nodes(ids: {_literal(_ids(MAX_NODES * 2))}) {NODE_SELECTION} }}"
    by_variable = f"query Q($ids: [ID!]!) {{ nodes(ids: $ids) {NODE_SELECTION} }}"
    assert fixed_cost(SCHEMA, *parts(literal)) == 1 + MAX_NODES * PER_NODE
    assert fixed_cost(SCHEMA, *parts(by_variable)) is None
    # the least cost of a document takes an empty list for the variable: nothing under `nodes`
    assert least_cost(SCHEMA, *parts(by_variable)) == 1
    assert least_cost(SCHEMA, *parts(literal)) == 1 + MAX_NODES * PER_NODE


def test_many_ids_under_a_costly_selection_are_refused_by_the_cost_limit() -> None:
    # given a selection that alone fits the default cost limit, asked for through `nodes` with every id
    limit = Settings.model_fields["max_query_cost"].default
    inner = "... on Board { generations(first: 100) { edges { node { id status prompt } } } }"
    one = cost(f'{{ node(id: "a") {{ {inner} }} }}')
    many = cost(f"{{ nodes(ids: {_literal(_ids(MAX_NODES))}) {{ {inner} }} }}")
    # then one object fits, and every id at once is over the limit
    assert one <= limit < many
