"""The cost of an operation: how many fields it may resolve, `first` multiplying through nesting.

A field that resolves its selection once per id it is given (`nodes(ids:)`) multiplies like a
page: by the length of its list (a literal's, or the variable's value), at most what it takes.

`operation_cost` is computed per request (the variables decide `first: $n`); `fixed_cost`
once per document when no variable decides it; `least_cost` is the bound no request can
go below (every unknown page empty), which graph/limits.py uses to refuse a document once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)

from domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from graph.common.node import MAX_NODES
from graph.document_shape import SATURATED

# Cost of a field = how many times it may be resolved: the product of the page sizes
# (`first` or `last`) of the connections above it (and of its own, for its children). A
# size over MAX_PAGE_SIZE counts as MAX_PAGE_SIZE: the resolver refuses it (INVALID_INPUT,
# which names the argument) and no page can be larger. Neither given (or null): the field's
# default `first`, else the default page, as the resolvers read it.
PAGE_ARGUMENT = "first"
BACKWARD_ARGUMENT = "last"
_ABSENT = object()
_SMALLEST = object()  # a variable not known yet, as the smallest value any request could give (least_cost)

#: Fields whose selection is resolved once per element of a list argument: (type, field) -> (argument,
#: the most elements the resolver takes; more are refused, so no request resolves more).
LIST_MULTIPLIERS: Final[Mapping[tuple[str, str], tuple[str, int]]] = {("Query", "nodes"): ("ids", MAX_NODES)}


def _argument(node: FieldNode, name: str, variables: Mapping[str, Any], consulted: list[str]) -> Any:
    """The value of argument `name` as written (a variable's value), or _ABSENT."""
    for argument in node.arguments or ():
        if argument.name.value != name:
            continue
        if isinstance(argument.value, IntValueNode):
            return int(argument.value.value)
        if isinstance(argument.value, VariableNode):
            consulted.append(argument.value.name.value)
            return variables.get(argument.value.name.value, _ABSENT)
        if isinstance(argument.value, NullValueNode):
            return None
        return "unknown"  # a bad literal: validation refuses it; counted as the largest page
    return _ABSENT


def _page_size(node: FieldNode, default: Any, variables: Mapping[str, Any], consulted: list[str]) -> int:
    """The page the field may return: its `first` or `last` within [0, MAX_PAGE_SIZE] (the larger
    when both are given, which the resolvers refuse); `default` (the field's default `first`) or
    the default page when neither is; the largest page when a value cannot be known here."""
    sizes: list[int] = []
    for name in (PAGE_ARGUMENT, BACKWARD_ARGUMENT):
        value = _argument(node, name, variables, consulted)
        if value is _ABSENT or value is None:
            continue
        if value is _SMALLEST:
            value = 0
        if not isinstance(value, int) or isinstance(value, bool):
            return MAX_PAGE_SIZE
        sizes.append(min(max(value, 0), MAX_PAGE_SIZE))
    if sizes:
        return max(sizes)
    if isinstance(default, int) and not isinstance(default, bool):
        return min(max(default, 0), MAX_PAGE_SIZE)
    return DEFAULT_PAGE_SIZE


def _list_length(node: FieldNode, name: str, most: int, variables: Mapping[str, Any], consulted: list[str]) -> int:
    """How many elements list argument `name` holds, within [0, most]: a literal list's length, a
    variable's value's; one for a single value (input coercion makes it a list of one); `most`
    when it cannot be known here."""
    for argument in node.arguments or ():
        if argument.name.value != name:
            continue
        value = argument.value
        if isinstance(value, ListValueNode):
            return min(len(value.values), most)
        if isinstance(value, NullValueNode):
            return 0
        if not isinstance(value, VariableNode):
            return 1
        consulted.append(value.name.value)
        given = variables.get(value.name.value, _ABSENT)
        if given is _SMALLEST or given is None:
            return 0
        if isinstance(given, list | tuple):
            return min(len(given), most)
        if isinstance(given, str | int | float):
            return 1
        return most  # no value, or one no coercion accepts: refused later, costed as the largest
    return 0  # the argument is required: validation refuses the field


class _CostWalk:
    """What one cost computation needs at every level (a class, not a closure: a recursive
    closure is a reference cycle, garbage for the collector on every request).

    A field's cost is linear in how many times its parent is resolved, so each fragment's
    cost is computed once, for one resolution, and multiplied at every spread: the walk
    visits each fragment definition once (`visits`), whatever the spreads (see
    graph/document_shape.py for why that matters).
    """

    __slots__ = ("consulted", "fragments", "schema", "values", "visits", "_per_fragment")

    def __init__(
        self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode], values: Mapping[str, Any]
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.values = values
        self.consulted: list[str] = []  # the variables the cost depended on
        self.visits: Counter[str] = Counter()
        self._per_fragment: dict[str, int] = {}

    def walk(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None) -> int:
        """Fields resolved at most when the parent of `selection_set` is resolved once."""
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                fields = getattr(parent, "fields", None) or {}
                field = fields.get(name)
                if field is None or name.startswith("__"):
                    continue  # introspection is bounded by the schema; unknown fields fail validation
                total += 1
                if selection.selection_set is not None:
                    times = 1
                    listed = LIST_MULTIPLIERS.get((parent.name, name)) if parent is not None else None
                    if listed is not None:
                        times = _list_length(selection, *listed, self.values, self.consulted)
                    elif PAGE_ARGUMENT in field.args:
                        default = field.args[PAGE_ARGUMENT].default_value
                        times = _page_size(selection, default, self.values, self.consulted)
                    total += times * self.walk(selection.selection_set, get_named_type(field.type))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.walk(selection.selection_set, target)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value)
            total = min(total, SATURATED)
        return total

    def _fragment(self, name: str) -> int:
        if name in self._per_fragment:
            return self._per_fragment[name]
        fragment = self.fragments.get(name)
        if fragment is None:
            return 0
        self._per_fragment[name] = 0  # a cycle (refused by validation) counts as nothing
        self.visits[name] += 1
        target = self.schema.get_type(fragment.type_condition.name.value)
        self._per_fragment[name] = self.walk(fragment.selection_set, target)
        return self._per_fragment[name]


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    """Fields the operation may resolve at most, `first` multiplying through nesting."""
    return _walk_cost(schema, operation, fragments, variables)[0]


def fixed_cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> int | None:
    """The operation's cost when no variable decides it (no `first: $n`, no `ids: $ids`), else None: computed
    per request."""
    cost, consulted = _walk_cost(schema, operation, fragments, {})
    return None if consulted else cost


def _walk_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> tuple[int, list[str]]:
    defaults: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if isinstance(definition.default_value, IntValueNode):
            defaults[definition.variable.name.value] = int(definition.default_value.value)
        elif isinstance(definition.default_value, ListValueNode):  # its length is what a list's cost reads
            defaults[definition.variable.name.value] = list(definition.default_value.values)
    walk = _CostWalk(schema, fragments, {**defaults, **variables})
    cost = walk.walk(operation.selection_set, schema.get_root_type(operation.operation))
    return cost, walk.consulted


class _SmallestPages(dict[str, Any]):
    """Variables as the smallest any request could give: an empty page for every `first`, an empty
    list for every `ids`, not known yet."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key, _SMALLEST)


def least_cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    """A cost no request can go below, whatever its variables: judged once per document."""
    walk = _CostWalk(schema, fragments, _SmallestPages())
    return walk.walk(operation.selection_set, schema.get_root_type(operation.operation))
