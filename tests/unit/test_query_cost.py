"""The per-operation cost: fields times the `first` of every connection above them."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from domain.pagination import MAX_PAGE_SIZE
from graph.query_cost import fixed_cost, operation_cost
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
