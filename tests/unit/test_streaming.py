"""An exception out of a subscription's event stream is located at its root field, however the document reaches it."""

from __future__ import annotations

from graphql import GraphQLError, OperationDefinitionNode, parse
from hypothesis import given
from hypothesis import strategies as st
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from graph.document_shape import fragments_of
from graph.execution import OperationPlan, operations_by_name
from graph.streaming import failed_root_field, pre_execution_error, root_field

NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
WRAPPERS = st.lists(st.sampled_from(["inline", "typed inline", "spread"]), max_size=5)


def subscription(field: str, alias: str | None, wrappers: list[str]) -> str:
    """`field` (aliased or not) as the root field, reached through inline fragments and named ones."""
    selection = f"{alias}: {field}" if alias else field
    fragments: list[str] = []
    for i, wrapper in enumerate(wrappers):
        if wrapper == "spread":
            fragments.append(f"fragment F{i} on Subscription {{ {selection} }}")
            selection = f"...F{i}"
        else:
            selection = ("... on Subscription" if wrapper == "typed inline" else "...") + f" {{ {selection} }}"
    return f"subscription S {{ {selection} }}\n" + "\n".join(fragments)


def planned(query: str) -> tuple[OperationPlan, OperationDefinitionNode]:
    document = parse(query)
    operations = operations_by_name(document)
    plan = OperationPlan((), document, operations, fragments_of(document))
    return plan, operations["S"]


@given(field=NAMES, alias=st.none() | NAMES, wrappers=WRAPPERS, message=st.text(max_size=40))
def test_the_error_is_located_at_the_root_field(
    field: str, alias: str | None, wrappers: list[str], message: str
) -> None:
    # given a subscription whose one root field sits behind fragments
    plan, operation = planned(subscription(field, alias, wrappers))
    # when its event stream raises
    error = RuntimeError(message)
    located = failed_root_field(error, plan, operation)
    # then the error is that field's: its response key as path, the exception kept
    found = root_field(operation.selection_set, plan.fragments)
    assert found is not None and found.name.value == field
    assert located.path == [alias or field]
    assert located.original_error is error and located.message == message
    assert located.nodes == [found]


def test_a_spread_of_an_unknown_fragment_locates_nothing() -> None:
    # (validation refuses such documents; this only shows the fallback stays an error)
    plan, operation = planned("subscription S { ...Missing }")
    located = failed_root_field(RuntimeError("boom"), plan, operation)
    assert located.path is None and located.message == "boom"


def test_a_graphql_error_is_left_as_it_is() -> None:
    plan, operation = planned("subscription S { creditsChanged { balance } }")
    error = GraphQLError("already located", path=["creditsChanged"])
    assert failed_root_field(error, plan, operation) is error


@given(name=st.none() | NAMES)
def test_pre_execution_errors_carry_strawberrys_messages(name: str | None) -> None:
    unknown = pre_execution_error(CannotGetOperationTypeError(name))
    assert unknown.message == CannotGetOperationTypeError(name).as_http_error_reason()
    assert isinstance(unknown.original_error, CannotGetOperationTypeError)
    assert pre_execution_error(InvalidOperationTypeError(OperationType.MUTATION)).message == "mutations are not allowed"
