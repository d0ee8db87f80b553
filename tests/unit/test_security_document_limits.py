"""Document limits are linear in the document: each fragment is measured once, whatever its spreads.

Generated fragment graphs (chains, fan-outs, diamonds) check two things: the analysis
walks every fragment definition a bounded number of times (counted, not timed), and its
answers equal a naive expansion's (strawberry's own depth and alias rules, and a
reference cost walk) on documents small enough to expand.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
    parse,
    validate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from strawberry.extensions.max_aliases import create_validator as strawberry_aliases
from strawberry.extensions.query_depth_limiter import create_validator as strawberry_depth

from graph.document_shape import (
    MAX_SAME_NAME,
    DocumentShape,
    fragments_of,
    merge_problems,
    shape_problems,
    spread_count,
)
from graph.limits import query_limits, screen
from graph.limits import validate as validate_with_limits
from graph.query_cost import PAGE_ARGUMENT, _CostWalk, _page_size, least_cost, operation_cost
from graph.schema import build_schema
from infrastructure.settings import Settings

SCHEMA = build_schema().graphql_schema
LIMITS = query_limits(Settings(_env_file=None))  # type: ignore[call-arg]

# Selections a fragment on Query may hold: plain fields, a connection, aliases, nesting.
LEAVES = (
    "me { id email }",
    "credits { balance }",
    "m: models { slug }",
    "generations(first: 3) { edges { node { id } } }",
    "generations(first: 2) { edges { node { board { id name } } } }",
)


@st.composite
def fragment_graphs(draw: st.DrawFn, max_fragments: int = 8, max_spreads: int = 8) -> str:
    """A document whose fragment i may spread any earlier fragment several times (a DAG)."""
    count = draw(st.integers(1, max_fragments))
    fragments = []
    for i in range(count):
        parts = [draw(st.sampled_from(LEAVES))]
        if i:
            for _ in range(draw(st.integers(0, max_spreads))):
                target = draw(st.integers(0, i - 1))
                parts.append(f"...F{target}" if draw(st.booleans()) else f"me {{ id }} ...F{target}")
        fragments.append(f"fragment F{i} on Query {{ {' '.join(parts)} }}")
    roots = " ".join(f"...F{i}" for i in draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=4)))
    used = " ".join(f"...F{i}" for i in range(count))  # every fragment used: no NoUnusedFragments noise
    return f"query Q {{ {roots} }}\nquery All {{ {used} }}\n" + "\n".join(fragments)


def chain(levels: int, fan_out: int) -> str:
    """The attack from the report: each fragment spreads the previous one `fan_out` times."""
    fragments = ["fragment F0 on Query { me { id } }"]
    for i in range(1, levels + 1):
        fragments.append(f"fragment F{i} on Query {{ {' '.join([f'...F{i - 1}'] * fan_out)} }}")
    return f"query Q {{ ...F{levels} }}\n" + "\n".join(fragments)


def naive_cost(selection_set: SelectionSetNode, parent: Any, fragments: dict[str, FragmentDefinitionNode]) -> int:
    """The reference: expand every spread where it stands (exponential, for small documents only)."""
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            field = (getattr(parent, "fields", None) or {}).get(selection.name.value)
            if field is None or selection.name.value.startswith("__"):
                continue
            total += 1
            if selection.selection_set is not None:
                times = 1
                if PAGE_ARGUMENT in field.args:
                    times = _page_size(selection, field.args[PAGE_ARGUMENT].default_value, {}, [])
                total += times * naive_cost(selection.selection_set, get_named_type(field.type), fragments)
        elif isinstance(selection, InlineFragmentNode):
            total += naive_cost(selection.selection_set, parent, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            target = SCHEMA.get_type(fragment.type_condition.name.value)
            total += naive_cost(fragment.selection_set, target, fragments)
    return total


def operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def strawberry_messages(document: DocumentNode, rule: type[ValidationRule]) -> list[str]:
    return [e.message for e in validate(SCHEMA, document, [rule], max_errors=10**6)]


@settings(max_examples=60, deadline=None)
@given(fragment_graphs(max_fragments=5, max_spreads=3))
def test_measures_equal_a_naive_expansion(query: str) -> None:
    # given a small document that can still be expanded naively
    document = parse(query)
    fragments = fragments_of(document)
    shape = DocumentShape(fragments)
    # then depth and aliases agree with strawberry's (expanding) rules at every limit
    for operation in operations(document):
        depth = shape.depth(operation.selection_set)
        name = operation.name.value if operation.name else "anonymous"
        over = strawberry_messages(document, strawberry_depth(depth - 1, None))
        assert f"'{name}' exceeds maximum operation depth of {depth - 1}" in over
        assert not [m for m in strawberry_messages(document, strawberry_depth(depth, None)) if f"'{name}'" in m]
    aliases = sum(shape.aliases(o.selection_set) for o in operations(document))
    assert strawberry_messages(document, strawberry_aliases(aliases)) == []
    if aliases:
        assert strawberry_messages(document, strawberry_aliases(aliases - 1)) == [
            f"{aliases} aliases found. Allowed: {aliases - 1}"
        ]
    # and the cost agrees with the reference walk
    for operation in operations(document):
        expected = naive_cost(operation.selection_set, SCHEMA.query_type, fragments)
        assert operation_cost(SCHEMA, operation, fragments, {}) == expected
        assert least_cost(SCHEMA, operation, fragments) == expected  # no variables: the bound is exact


@settings(max_examples=60, deadline=None)
@given(fragment_graphs(max_fragments=40, max_spreads=8))
def test_each_fragment_is_walked_at_most_once_per_measure(query: str) -> None:
    document = parse(query)
    fragments = fragments_of(document)
    shape = DocumentShape(fragments)
    walk = _CostWalk(SCHEMA, fragments, {})
    for operation in operations(document):
        shape.depth(operation.selection_set)
        shape.aliases(operation.selection_set)
        walk.walk(operation.selection_set, SCHEMA.query_type)
    assert set(shape.visits.values()) <= {1, 2}  # once for depth, once for aliases
    assert set(walk.visits.values()) <= {1}


@settings(max_examples=30, deadline=None)
@given(levels=st.integers(1, 24), fan_out=st.integers(2, 8))
def test_fragment_chains_are_refused_without_expansion(levels: int, fan_out: int) -> None:
    # given the reported attack at any size the spread limit allows
    document = parse(chain(levels, fan_out))
    fragments = fragments_of(document)
    walk = _CostWalk(SCHEMA, fragments, {})
    # when it is screened, then each fragment was walked once and the cost is the exact product
    cost = walk.walk(operations(document)[0].selection_set, SCHEMA.query_type)
    assert set(walk.visits.values()) == {1} and len(walk.visits) == levels + 1
    assert cost == min(2 * fan_out**levels, 2**62)
    problems = screen(SCHEMA, document, LIMITS)
    spreads = levels * fan_out + 1
    if spreads > LIMITS.max_spreads:
        assert problems[0].message == f"{spreads} fragment spreads found. Allowed: {LIMITS.max_spreads}"
    elif cost > LIMITS.max_cost:
        assert problems[0].extensions["code"] == "QUERY_TOO_COSTLY"
    else:  # (a fragment spread again at one level is compared once: the chain merges into one `me`)
        assert problems == []


@settings(max_examples=40, deadline=None)
@given(fragments=st.integers(0, 80), spreads=st.integers(0, 300))
def test_fragment_and_spread_counts_have_limits(fragments: int, spreads: int) -> None:
    definitions = [f"fragment F{i} on Query {{ me {{ id }} }}" for i in range(fragments)]
    body = " ".join(f"...F{i % max(fragments, 1)}" for i in range(spreads)) if fragments else "me { id }"
    document = parse(f"query Q {{ {body} }}\n" + "\n".join(definitions))
    assert spread_count(document) == (spreads if fragments else 0)
    problems = shape_problems(
        document, fragments_of(document), max_depth=99, max_aliases=10**9, max_fragments=50, max_spreads=200
    )
    if fragments > 50:
        assert [p.message for p in problems] == [f"{fragments} fragments defined. Allowed: 50"]
    elif fragments and spreads > 200:
        assert [p.message for p in problems] == [f"{spreads} fragment spreads found. Allowed: 200"]
    else:
        assert problems == []


def test_a_cost_that_depends_on_variables_is_judged_with_the_smallest_pages() -> None:
    # given pages whose size only the request knows, nested under a fragment fan-out
    query = (
        "query Q($n: Int) { ...F2 }\n"
        "fragment F0 on Query { generations(first: $n) { edges { node { id } } } }\n"
        "fragment F1 on Query { " + " ".join(["...F0"] * 8) + " }\n"
        "fragment F2 on Query { " + " ".join(["...F1"] * 8) + " }"
    )
    document = parse(query)
    operation = operations(document)[0]
    # then the screen's bound counts each unknown page as empty, and the request's cost uses the variable
    assert least_cost(SCHEMA, operation, fragments_of(document)) == 64
    assert operation_cost(SCHEMA, operation, fragments_of(document), {"n": 10}) == 64 * 31


@settings(max_examples=60, deadline=None)
@given(
    outer=st.integers(1, 2 * MAX_SAME_NAME),
    inner=st.integers(1, 2 * MAX_SAME_NAME),
    through_fragment=st.booleans(),
)
def test_one_name_repeated_at_a_merged_level_is_bounded(outer: int, inner: int, through_fragment: bool) -> None:
    # given `me` selected `outer` times, each selecting `id` `inner` times (directly or through a fragment)
    body = " ".join(["id"] * inner)
    if through_fragment:
        query = "query Q { " + " ".join(["...M"] * outer) + " }\nfragment M on Query { me { " + body + " } }"
    else:
        query = "query Q { " + " ".join([f"me {{ {body} }}"] * outer) + " }"
    document = parse(query)
    problems = merge_problems(
        operations(document)[0], fragments_of(document), max_same_name=MAX_SAME_NAME, max_fields=10**6
    )
    # then the merged `me` holds outer * inner `id`s: refused past the limit, at either level
    # (one fragment spread again at a level is compared once, as graphql-core does)
    outer = 1 if through_fragment else outer
    if outer > MAX_SAME_NAME:
        assert problems[0].message.startswith(f"'me' is selected {outer} times")
    elif outer * inner > MAX_SAME_NAME:
        assert problems[0].message.startswith(f"'id' is selected {outer * inner} times")
    else:
        assert problems == []


@pytest.mark.parametrize(
    "query",
    [
        "query Q { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "query Q { me { ...A } } fragment A on User { id ...B } fragment B on User { email ...A }",
        "query Q { generations { edges { node { ...G } } } } fragment G on Generation { board { generations { edges { node { ...G } } } } }",
    ],
)
def test_cycles_of_fragments_end_and_are_left_to_validation(query: str) -> None:
    document = parse(query)
    assert merge_problems(operations(document)[0], fragments_of(document), max_same_name=10, max_fields=500) == []


def test_the_expanded_selections_have_a_budget() -> None:
    fragments = ["fragment F0 on Query { me { id } }"]
    fragments += [f"fragment F{i} on Query {{ a: me {{ id }} ...F{i - 1} }}" for i in range(1, 40)]
    document = parse("query Q { ...F39 }\n" + "\n".join(fragments))
    problems = merge_problems(operations(document)[0], fragments_of(document), max_same_name=100, max_fields=50)
    assert problems[0].message == "The document selects more than 50 fields once expanded."


@settings(max_examples=8, deadline=None)
@given(per=st.integers(60, 140), fragments=st.integers(30, 49))
def test_nesting_chained_through_fragments_is_refused_not_raised(per: int, fragments: int) -> None:
    # given an operator who raised the token limit far, and fragments nesting inside each other
    limits = query_limits(Settings(_env_file=None, max_query_tokens=40_000))  # type: ignore[call-arg]
    chain = ["fragment F0 on Query { me { id } }"]
    for i in range(1, fragments + 1):
        chain.append(f"fragment F{i} on Query {{ {'... on Query { ' * per}...F{i - 1}{' }' * per} }}")
    document = parse(f"query Q {{ ...F{fragments} }}\n" + "\n".join(chain), max_tokens=40_000)
    # then judging it answers with errors, whatever the recursion it would take
    errors = validate_with_limits(SCHEMA, document, limits)
    assert errors, "a document this deep is not valid"
