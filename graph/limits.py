"""Query limits for a public endpoint: depth, tokens, aliases, a per-operation cost, introspection.

`query_limits(settings)` gathers them once (`QueryLimits`); `validate` applies them to a
document: first `screen`, our own limits (fragments, spreads, depth, aliases, the cost
no request can go below) in time linear in the document, then the specification's
rules. Two paths call it: HTTP operations through graph/execution.py (cached operation
plans), subscriptions (and everything when tracing is on) through strawberry's
extensions, for which `limit_extensions(limits)` returns zero-argument factories
(strawberry wants factories, not shared instances).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    ValidationRule,
    specified_rules,
)
from graphql import validate as graphql_validate
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaxTokensLimiter, ParserCache, SchemaExtension

from graph.document_shape import (
    MAX_EXPANDED_SELECTIONS,
    MAX_SAME_NAME,
    fragments_of,
    merge_problems,
    shape_problems,
)
from graph.query_cost import least_cost, operation_cost
from infrastructure.settings import Settings

CACHE_SIZE = 256
#: Longer documents are judged on every request instead of being kept: a cache holds its
#: keys, and a request body may be megabytes (a real operation is a few hundred bytes).
MAX_CACHED_QUERY = 16 * 1024
TOO_COSTLY = "QUERY_TOO_COSTLY"


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


class LimitedValidation(SchemaExtension):
    """strawberry's validation step replaced by `validate` (our limits first), cached by document text."""

    def __init__(self, validated: Callable[[GraphQLSchema, DocumentNode, str], list[GraphQLError]]) -> None:
        self.validated = validated

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None:
            ctx.pre_execution_errors = self.validated(ctx.schema._schema, ctx.graphql_document, ctx.query or "")
        yield


def screen(schema: GraphQLSchema, document: DocumentNode, limits: QueryLimits) -> list[GraphQLError]:
    """The limits a document breaks whatever its variables, in time linear in its length.

    Run before graphql-core's validation, whose rules together take far longer per node:
    a document built to be expensive is refused before that work.
    """
    fragments = fragments_of(document)
    problems = shape_problems(
        document,
        fragments,
        max_depth=limits.max_depth,
        max_aliases=limits.max_aliases,
        max_fragments=limits.max_fragments,
        max_spreads=limits.max_spreads,
    )
    if problems:
        return problems
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and definition.operation is not OperationType.SUBSCRIPTION:
            if schema.get_root_type(definition.operation) is None:
                continue  # no such root type: validation says so
            cost = least_cost(schema, definition, fragments)
            if cost > limits.max_cost:
                return [too_costly(cost, limits.max_cost, definition)]
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            problems = merge_problems(
                definition, fragments, max_same_name=MAX_SAME_NAME, max_fields=MAX_EXPANDED_SELECTIONS
            )
            if problems:
                return problems
    return []


def validate(schema: GraphQLSchema, document: DocumentNode, limits: QueryLimits) -> list[GraphQLError]:
    """Our limits first, then the specification's rules with ours on top (`limits.rules`).

    The walks (ours and graphql-core's) recurse along the nesting, fragments followed: the
    parser bounds a document's own nesting, but a chain of nested fragments can go deeper
    when MAX_QUERY_TOKENS is raised far. Such a document is refused, not an error of ours.
    """
    try:
        return screen(schema, document, limits) or graphql_validate(
            schema, document, (*specified_rules, *limits.rules), hide_suggestions=limits.hide_suggestions
        )
    except RecursionError:
        return [GraphQLError("The document nests too deeply (fragments followed) to be judged.")]


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
    max_depth: int
    max_aliases: int
    max_fragments: int
    max_spreads: int
    hide_suggestions: bool = False  # no "Did you mean ...?" where the schema is not public


def query_limits(settings: Settings) -> QueryLimits:
    rules: tuple[type[ValidationRule], ...] = (
        () if settings.introspection_enabled else (NoSchemaIntrospectionCustomRule,)
    )
    return QueryLimits(
        max_tokens=settings.max_query_tokens,
        rules=rules,
        max_cost=settings.max_query_cost,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_fragments=settings.max_fragments,
        max_spreads=settings.max_fragment_spreads,
        hide_suggestions=not settings.introspection_enabled,
    )


def too_costly(cost: int, max_cost: int, operation: OperationDefinitionNode) -> GraphQLError:
    return GraphQLError(
        f"The operation is too costly: {cost} fields at most, the limit is {max_cost}. "
        "Ask for smaller pages (`first`) or fewer nested connections.",
        nodes=[operation],
        extensions={"code": TOO_COSTLY, "cost": cost, "maxCost": max_cost},
    )


class _Judged:
    """Validation results by document text, bounded (least recently used out)."""

    def __init__(self, limits: QueryLimits, maxsize: int = CACHE_SIZE) -> None:
        self.limits = limits
        self.maxsize = maxsize
        self.kept: OrderedDict[tuple[int, str], list[GraphQLError]] = OrderedDict()

    def __call__(self, schema: GraphQLSchema, document: DocumentNode, query: str) -> list[GraphQLError]:
        if len(query) > MAX_CACHED_QUERY:  # not kept: the cache would hold the whole document
            return validate(schema, document, self.limits)
        key = (id(schema), query)
        if key in self.kept:
            self.kept.move_to_end(key)
            return self.kept[key]
        errors = self.kept[key] = [e.with_traceback(None) for e in validate(schema, document, self.limits)]
        if len(self.kept) > self.maxsize:
            self.kept.popitem(last=False)
        return errors


def limit_extensions(limits: QueryLimits) -> list[Callable[[], SchemaExtension]]:
    """Factories for every limit; the order matches strawberry's phases (parse, validate, execute)."""
    judged = _Judged(limits)
    return [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: SafeParserCache(maxsize=CACHE_SIZE),
        lambda: LimitedValidation(judged),
        lambda: QueryCostLimiter(max_cost=limits.max_cost),
    ]
