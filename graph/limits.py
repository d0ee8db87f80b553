"""Query limits for a public endpoint: depth, tokens, aliases, a per-operation cost, introspection.

`query_limits(settings)` gathers them once (`QueryLimits`); `validate` applies them to a
document: first `screen`, our own limits (fragments, spreads, depth, aliases, the cost
no request can go below) in time linear in the document, then the specification's
rules. graph/execution.py calls it once per document, when it plans it (every operation,
HTTP and WebSocket); the cost that depends on variables is checked there per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    ValidationRule,
    specified_rules,
)
from graphql import validate as graphql_validate
from graphql.validation import NoSchemaIntrospectionCustomRule

from graph.document_shape import (
    MAX_EXPANDED_SELECTIONS,
    MAX_SAME_NAME,
    fragments_of,
    merge_problems,
    shape_problems,
)
from graph.incremental_delivery import unsupported_directive
from graph.query_cost import least_cost
from infrastructure.settings import Settings

CACHE_SIZE = 256
#: Longer documents are judged on every request instead of being kept: a cache holds its
#: keys, and a request body may be megabytes (a real operation is a few hundred bytes).
MAX_CACHED_QUERY = 16 * 1024
TOO_COSTLY = "QUERY_TOO_COSTLY"


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
    """Our limits first, then `@defer`/`@stream` refused (graph/incremental_delivery.py), then the
    specification's rules with ours on top (`limits.rules`).

    The walks (ours and graphql-core's) recurse along the nesting, fragments followed: the
    parser bounds a document's own nesting, but a chain of nested fragments can go deeper
    when MAX_QUERY_TOKENS is raised far. Such a document is refused, not an error of ours.
    """
    try:
        if problems := screen(schema, document, limits):
            return problems
        if refusal := unsupported_directive(document):
            return [refusal]
        return graphql_validate(
            schema, document, (*specified_rules, *limits.rules), hide_suggestions=limits.hide_suggestions
        )
    except RecursionError:
        return [GraphQLError("The document nests too deeply (fragments followed) to be judged.")]


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
