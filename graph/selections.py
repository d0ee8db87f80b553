"""The selection a compiled read asks for: fields collected as graphql-core collects them
(fragments, @skip/@include), as a tree of `Selected` the compiler reads (graph/compiled_reads.py).

A nested field with arguments (other than those in PER_REQUEST, whose values the caller
binds per request), an abstract type or an unknown field raises NotCompilable: the
resolvers answer such documents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    Visitor,
    get_named_type,
    visit,
)
from graphql.execution.values import VariableValues, get_directive_values

from infrastructure.db.json_reads.selection import NotCompilable, Selected

#: Nested fields that compile with values taken per request (their arguments, or the clock):
#: each gets a `Selected.slot`, and the caller binds its values (graph/compiled_reads.py).
PER_REQUEST = frozenset({("Board", "generations"), ("Board", "invitations"), ("Asset", "url")})


@dataclass(frozen=True, slots=True)
class NestedField:
    """A PER_REQUEST field of a selection: where its argument values come from."""

    type_name: str
    name: str
    definition: GraphQLField
    node: FieldNode


def _included(node: FieldNode | FragmentSpreadNode | InlineFragmentNode, variables: VariableValues) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, node, variables)
    if skip is not None and skip.get("if") is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)
    return not (include is not None and include.get("if") is False)


def _matches(schema: GraphQLSchema, condition: str | None, runtime: GraphQLObjectType) -> bool:
    if condition is None or condition == runtime.name:
        return True
    abstract = schema.get_type(condition)
    return abstract is not None and schema.is_sub_type(abstract, runtime)  # type: ignore[arg-type]


def collect(
    schema: GraphQLSchema,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: VariableValues,
    runtime: GraphQLObjectType,
    selection_sets: Sequence[SelectionSetNode],
) -> dict[str, list[FieldNode]]:
    """Fields by response key, in order, as graphql-core's CollectFields groups them."""
    grouped: dict[str, list[FieldNode]] = {}
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if not _included(selection, variables):  # type: ignore[arg-type]
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition.name.value if selection.type_condition else None
                if _matches(schema, condition, runtime):
                    walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if name in seen or fragment is None:
                    continue
                seen.add(name)
                if _matches(schema, fragment.type_condition.name.value, runtime):
                    walk(fragment.selection_set)

    for selection_set in selection_sets:
        walk(selection_set)
    return grouped


def selected(
    schema: GraphQLSchema,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: VariableValues,
    runtime: GraphQLObjectType,
    nodes: Sequence[FieldNode],
    nested: list[NestedField] | None = None,
) -> tuple[Selected, ...]:
    """The sub-selection of `nodes` (fields of `runtime`) as a tree. A PER_REQUEST field is
    appended to `nested` and gets its index there as its slot; other nested arguments are
    not compiled."""
    out: list[Selected] = []
    sets = [n.selection_set for n in nodes if n.selection_set is not None]
    for key, group in collect(schema, fragments, variables, runtime, sets).items():
        name = group[0].name.value
        per_request = (runtime.name, name) in PER_REQUEST and nested is not None
        if any(n.arguments for n in group) and not per_request:
            raise NotCompilable(f"{runtime.name}.{name} with arguments")
        if name == "__typename":
            out.append(Selected(name, key))
            continue
        definition = runtime.fields.get(name)
        if definition is None:
            raise NotCompilable(f"{runtime.name}.{name}")
        slot = -1
        if per_request and nested is not None:
            # Validation made the group's arguments identical (fields that merge must agree).
            slot = len(nested)
            nested.append(NestedField(runtime.name, name, definition, group[0]))
        named = get_named_type(definition.type)
        if isinstance(named, GraphQLObjectType):
            tree = selected(schema, fragments, variables, named, group, nested)
            out.append(Selected(name, key, tree, slot=slot))
        elif any(n.selection_set for n in group):
            raise NotCompilable(f"{runtime.name}.{name}: an abstract type")
        else:
            out.append(Selected(name, key, slot=slot))
    return tuple(out)


class _DirectiveVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        for argument in node.arguments or ():
            if isinstance(argument.value, VariableNode) and argument.value.name.value not in self.names:
                self.names.append(argument.value.name.value)


def directive_variables(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> tuple[str, ...]:
    """Variables that directives read in the operation or in any fragment of its document: the
    selection @skip/@include leave depends on their values, so the memo is keyed by them."""
    found = _DirectiveVariables()
    for node in (operation, *fragments.values()):
        visit(node, found)
    return tuple(found.names)
