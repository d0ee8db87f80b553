"""The cost of an operation: how many fields it may resolve, `first` multiplying through nesting.

`operation_cost` is computed per request (the variables decide `first: $n`); `fixed_cost`
once per document when no variable decides it; `least_cost` is the bound no request can
go below (every unknown page empty), which graph/limits.py uses to refuse a document once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)

from domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from graph.document_shape import SATURATED

# Cost of a field = how many times it may be resolved: the product of the page sizes
# (`first` or `last`) of the connections above it (and of its own, for its children). A
# size over MAX_PAGE_SIZE counts as MAX_PAGE_SIZE: the resolver refuses it (INVALID_INPUT,
# which names the argument) and no page can be larger. Neither given (or null): the field's
# default `first`, else the default page, as the resolvers read it.
PAGE_ARGUMENT = "first"
BACKWARD_ARGUMENT = "last"
_ABSENT = object()


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
        if not isinstance(value, int) or isinstance(value, bool):
            return MAX_PAGE_SIZE
        sizes.append(min(max(value, 0), MAX_PAGE_SIZE))
    if sizes:
        return max(sizes)
    if isinstance(default, int) and not isinstance(default, bool):
        return min(max(default, 0), MAX_PAGE_SIZE)
    return DEFAULT_PAGE_SIZE


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
                    if PAGE_ARGUMENT in field.args:
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
    """The operation's cost when no variable decides it (no `first: $n`), else None: computed per request."""
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
        if definition.default_value is not None and isinstance(definition.default_value, IntValueNode):
            defaults[definition.variable.name.value] = int(definition.default_value.value)
    walk = _CostWalk(schema, fragments, {**defaults, **variables})
    cost = walk.walk(operation.selection_set, schema.get_root_type(operation.operation))
    return cost, walk.consulted


class _SmallestPages(dict[str, Any]):
    """Variables as the smallest page any request could ask for: 0 for every `first` not known yet."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key, 0)


def least_cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    """A cost no request can go below, whatever its variables: judged once per document."""
    walk = _CostWalk(schema, fragments, _SmallestPages())
    return walk.walk(operation.selection_set, schema.get_root_type(operation.operation))
