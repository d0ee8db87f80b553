"""Query limits for a public endpoint: depth, tokens, aliases, a per-operation cost, introspection.

`query_limits(settings)` gathers them once (`QueryLimits`). Two paths apply them:
HTTP operations through graph/execution.py (cached operation plans), subscriptions
(and everything when tracing is on) through strawberry's extensions, for which
`limit_extensions(limits)` returns zero-argument factories (strawberry wants factories,
not shared instances). The validation rules are built once, not per request:
`ValidationCache` keys on the rule classes, so a fresh class per request (what
`QueryDepthLimiter(...)` creates) would never hit the cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

from domain.pagination import MAX_PAGE_SIZE
from infrastructure.settings import Settings

CACHE_SIZE = 256
TOO_COSTLY = "QUERY_TOO_COSTLY"
# Cost of a field = how many times it may be resolved: the product of the `first`
# arguments of the connections above it (and of its own, for its children). A `first`
# over MAX_PAGE_SIZE counts as MAX_PAGE_SIZE: the resolver refuses it (INVALID_INPUT,
# which names the argument) and no page can be larger.
PAGE_ARGUMENT = "first"


def _fragment_names(selection_set: SelectionSetNode | None, out: set[str]) -> None:
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FragmentSpreadNode):
            out.add(selection.name.value)
        elif isinstance(selection, FieldNode | InlineFragmentNode):
            _fragment_names(selection.selection_set, out)


def _guarded(rule: type[ValidationRule]) -> type[ValidationRule]:
    """Run strawberry's depth rule only on documents whose fragment spreads all resolve.

    It looks fragments up with `[]` and would raise KeyError on `...Unknown`; the
    standard KnownFragmentNames rule already reports that document as invalid.
    """

    class Guarded(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            defined = {d.name.value for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)}
            used: set[str] = set()
            for definition in context.document.definitions:
                if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
                    _fragment_names(definition.selection_set, used)
            if used <= defined:
                rule(context)

    Guarded.__name__ = f"Guarded{rule.__name__}"
    return Guarded


class SafeParserCache(ParserCache):
    """ParserCache that leaves syntax errors to strawberry's own parse step.

    strawberry's ParserCache raises them from the extension hook, outside the handler that
    turns them into a normal error result (with our code and request id); lru_cache keeps
    no exceptions, so a bad document is simply parsed again, uncached.
    """

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        with contextlib.suppress(GraphQLError):
            ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
        yield


class StaticRules(AddValidationRules):
    """AddValidationRules over rule classes created once (see the module docstring)."""

    def __init__(self, rules: tuple[type[ValidationRule], ...]) -> None:
        super().__init__(list(rules))


def _page_size(node: FieldNode, default: Any, variables: Mapping[str, Any], consulted: list[str]) -> int:
    """The page the field may return: its `first` within [0, MAX_PAGE_SIZE]; the largest page when
    the `first` cannot be known here (null, a bad type)."""
    value: Any = default
    for argument in node.arguments or ():
        if argument.name.value != PAGE_ARGUMENT:
            continue
        if isinstance(argument.value, IntValueNode):
            value = int(argument.value.value)
        elif isinstance(argument.value, VariableNode):
            consulted.append(argument.value.name.value)
            value = variables.get(argument.value.name.value, default)
        else:
            value = None
    if isinstance(value, int) and not isinstance(value, bool):
        return min(max(value, 0), MAX_PAGE_SIZE)
    return MAX_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class _CostWalk:
    """What one cost computation needs at every level (a class, not a closure: a recursive
    closure is a reference cycle, garbage for the collector on every request)."""

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    values: Mapping[str, Any]
    consulted: list[str]  # the variables the cost depended on

    def walk(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, times: int, seen: frozenset[str]
    ) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                fields = getattr(parent, "fields", None) or {}
                field = fields.get(name)
                if field is None or name.startswith("__"):
                    continue  # introspection is bounded by the schema; unknown fields fail validation
                total += times
                if selection.selection_set is not None:
                    inner = times
                    if PAGE_ARGUMENT in field.args:
                        default = field.args[PAGE_ARGUMENT].default_value
                        inner = times * _page_size(selection, default, self.values, self.consulted)
                    total += self.walk(selection.selection_set, get_named_type(field.type), inner, seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.walk(selection.selection_set, target, times, seen)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is None or fragment.name.value in seen:
                    continue
                target = self.schema.get_type(fragment.type_condition.name.value)
                total += self.walk(fragment.selection_set, target, times, seen | {fragment.name.value})
        return total


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
    walk = _CostWalk(schema, fragments, {**defaults, **variables}, [])
    cost = walk.walk(operation.selection_set, schema.get_root_type(operation.operation), 1, frozenset())
    return cost, walk.consulted


def _selected_operation(document: Any, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


class QueryCostLimiter(SchemaExtension):
    """Rejects an operation whose cost exceeds `max_cost` before any resolver runs.

    It runs at execution (not validation) because `first: $n` is only known with the
    variables; a result set here short-circuits strawberry's execution.
    """

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        operation = _selected_operation(document, ctx.operation_name) if document is not None else None
        if operation is not None and operation.operation is not OperationType.SUBSCRIPTION:
            fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}  # type: ignore[union-attr]
            variables = ctx.variables if isinstance(ctx.variables, dict) else {}
            cost = operation_cost(ctx.schema._schema, operation, fragments, variables)
            if cost > self.max_cost:
                ctx.result = ExecutionResult(data=None, errors=[too_costly(cost, self.max_cost, operation)])
        yield


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_tokens: int
    rules: tuple[type[ValidationRule], ...]  # on top of the specification's rules
    max_cost: int


def query_limits(settings: Settings) -> QueryLimits:
    rules: list[type[ValidationRule]] = [
        _guarded(depth_validator(settings.max_query_depth, None)),
        alias_validator(settings.max_aliases),
    ]
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    return QueryLimits(settings.max_query_tokens, tuple(rules), settings.max_query_cost)


def too_costly(cost: int, max_cost: int, operation: OperationDefinitionNode) -> GraphQLError:
    return GraphQLError(
        f"The operation is too costly: {cost} fields at most, the limit is {max_cost}. "
        "Ask for smaller pages (`first`) or fewer nested connections.",
        nodes=[operation],
        extensions={"code": TOO_COSTLY, "cost": cost, "maxCost": max_cost},
    )


def limit_extensions(limits: QueryLimits) -> list[Callable[[], SchemaExtension]]:
    """Factories for every limit; the order matches strawberry's phases (parse, validate, execute)."""
    return [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: SafeParserCache(maxsize=CACHE_SIZE),
        lambda: StaticRules(limits.rules),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
        lambda: QueryCostLimiter(max_cost=limits.max_cost),
    ]
