"""Every GraphQL operation runs from a cached operation plan: queries, mutations and subscriptions, HTTP and WebSocket.

All that depends on the document alone (parse with the token limit, validation with every
rule, each operation's fixed cost) is computed once per document text and kept in a
bounded LRU (`OperationPlans`); what depends on the request (the cost of `first: $n`,
execution, the error policy, the spans) runs per request. Strawberry's per-request
extension lifecycle is not used (bench/execution_paths.py measures what that saves).
`execute_planned` answers with `strawberry.Schema.execute`'s contract; graph/streaming.py
with `Schema.stream`'s, for the WebSocket transports.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from graphql import (
    DocumentNode,
    Executor,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    MiddlewareManager,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.pyutils import AwaitableOrValue
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType

from graph.compiled_reads import CompiledReads
from graph.context import read_scope
from graph.document_shape import fragments_of
from graph.extensions import ErrorPolicy
from graph.fetches import CompiledFirst, GraphQLCoreFetch
from graph.limits import CACHE_SIZE, MAX_CACHED_QUERY, QueryLimits, too_costly, validate
from graph.query_cost import fixed_cost, operation_cost


@dataclass(frozen=True, slots=True)
class OperationInput:
    """What one request brings to a plan."""

    operation_name: str | None
    variables: dict[str, Any] | None
    context: Any
    root: Any = None
    extensions: dict[str, Any] | None = None
    middleware: MiddlewareManager | None = None  # resolver spans when tracing is on (graph/tracing.py)


class Fetch(Protocol):
    """How a plan's operations are run; `OperationPlan.fetch` holds the one chosen for a document."""

    def execute(self, plan: OperationPlan, request: OperationInput) -> AwaitableOrValue[GraphQLExecutionResult]: ...

    def subscribe(
        self, plan: OperationPlan, request: OperationInput
    ) -> AwaitableOrValue[AsyncIterator[GraphQLExecutionResult] | GraphQLExecutionResult]: ...


@dataclass(frozen=True, slots=True)
class OperationPlan:
    """What a document alone decides: parse, validation, each operation's fixed cost, and how it is fetched.

    Keyed by the document text only: the operation name selects from `operations` per
    request, so a client varying `operationName` reuses the plan instead of making the
    document be judged again (or pushing other plans out of the cache).

    `fetch` is how the plan's operations run, chosen once, when the document is planned
    (`OperationPlans._plan`, graph/fetches.py): a document with a query gets `CompiledFirst`
    (one SQL statement when graph/compiled_reads.py can answer, graphql-core otherwise),
    any other graphql-core's execution (`GraphQLCoreFetch`). The limits, the error policy
    and the spans around a fetch are the same whichever it is. This is the place to choose
    how an operation is fetched, not a second executor beside this one.
    """

    errors: tuple[GraphQLError, ...]  # syntax, token limit or validation: nothing is executed
    document: DocumentNode | None = None
    operations: Mapping[str | None, OperationDefinitionNode] = field(default_factory=dict)
    fragments: Mapping[str, FragmentDefinitionNode] = field(default_factory=dict)
    costs: Mapping[str | None, int | None] = field(default_factory=dict)  # None: computed per request
    fetch: Fetch | None = None  # None: refused, nothing runs

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation `name` selects (None: the only one), as graphql-core's get_operation_ast."""
        return self.operations.get(name)


def operations_by_name(document: DocumentNode) -> dict[str | None, OperationDefinitionNode]:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    by_name: dict[str | None, OperationDefinitionNode] = {o.name.value: o for o in operations if o.name}
    if len(operations) == 1:
        by_name[None] = operations[0]
    return by_name


class OperationPlans:
    """A bounded cache of plans (refused documents included: they cost a parse and a validation too)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        limits: QueryLimits,
        *,
        executor_class: type[Executor[Any]] = Executor,
        maxsize: int = CACHE_SIZE,
    ) -> None:
        self._schema = schema
        self._limits = limits
        self.max_cost = limits.max_cost
        self.hide_suggestions = limits.hide_suggestions
        self.fetch = GraphQLCoreFetch(schema, executor_class, limits.hide_suggestions)
        self.cached = functools.lru_cache(maxsize=maxsize)(self._plan)
        self.reads = CompiledReads(schema)

    def get(self, query: str) -> OperationPlan:
        if len(query) > MAX_CACHED_QUERY:
            return self._plan(query)
        return self.cached(query)

    def _plan(self, query: str) -> OperationPlan:
        # Kept errors drop their tracebacks: the cache would keep the parser's frames alive.
        try:
            document = parse(query, max_tokens=self._limits.max_tokens)
        except GraphQLError as error:
            return OperationPlan((error.with_traceback(None),))
        except Exception as error:  # RecursionError on absurd nesting: the client's document, not us
            return OperationPlan((GraphQLError(str(error), original_error=error.with_traceback(None)),))
        operations = operations_by_name(document)
        errors = validate(self._schema, document, self._limits)
        if errors:
            return OperationPlan(tuple(e.with_traceback(None) for e in errors), document, operations)
        fragments = fragments_of(document)
        costs = {name: fixed_cost(self._schema, operation, fragments) for name, operation in operations.items()}
        return OperationPlan((), document, operations, fragments, costs, self.fetch_for(operations.values()))

    def fetch_for(self, operations: Iterable[OperationDefinitionNode]) -> Fetch:
        """How a document's operations are fetched: a query may be a compiled read (its own memo per plan)."""
        if any(o.operation is OperationType.QUERY for o in operations):
            return CompiledFirst(self.reads, self.fetch)
        return self.fetch

    def select(
        self, query: str | None, operation_name: str | None, allowed: Iterable[StrawberryOperationType]
    ) -> tuple[OperationPlan, OperationDefinitionNode | None]:
        """The plan and its selected operation (None: the document did not parse), or strawberry's exceptions."""
        if not query:
            raise MissingQueryError
        plan = self.get(query)
        operation = plan.operation(operation_name)
        if plan.document is not None and operation is None:
            raise CannotGetOperationTypeError(operation_name)
        if operation is not None:
            kind = StrawberryOperationType(operation.operation.value)
            if kind not in allowed:
                raise InvalidOperationTypeError(kind)
        return plan, operation

    def too_costly(
        self, plan: OperationPlan, operation: OperationDefinitionNode, variables: Any
    ) -> GraphQLError | None:
        """The refusal of an operation whose cost with these variables is over the limit (subscriptions: none)."""
        if operation.operation is OperationType.SUBSCRIPTION:
            return None
        cost = plan.costs.get(operation.name.value if operation.name else None)
        if cost is None:
            cost = operation_cost(
                self._schema, operation, plan.fragments, variables if isinstance(variables, dict) else {}
            )
        return too_costly(cost, self.max_cost, operation) if cost > self.max_cost else None


class OperationTracing(Protocol):
    """Spans for operations run from plans (graph/tracing.py)."""

    def operation(self, query: str, name: str | None) -> AbstractContextManager[MiddlewareManager | None]:
        """Entered around one operation's run; gives the graphql-core middleware for its resolver spans."""
        ...


def traced(tracing: OperationTracing | None, query: str, name: str | None) -> AbstractContextManager[Any]:
    return contextlib.nullcontext(None) if tracing is None else tracing.operation(query, name)


def span_name(operation: OperationDefinitionNode | None, requested: str | None) -> str | None:
    return operation.name.value if operation is not None and operation.name else requested


async def run_planned(
    plans: OperationPlans, plan: OperationPlan, operation: OperationDefinitionNode, request: OperationInput
) -> GraphQLExecutionResult:
    """An accepted operation run once (a query or mutation): its cost with the request's variables, then its fetch."""
    refusal = plans.too_costly(plan, operation, request.variables)
    if refusal is not None:
        return GraphQLExecutionResult(None, [refusal])
    assert plan.fetch is not None
    if operation.operation is OperationType.QUERY:
        async with read_scope(request.context):
            outcome: Any = plan.fetch.execute(plan, request)
            return await outcome if inspect.isawaitable(outcome) else outcome  # type: ignore[no-any-return]
    outcome = plan.fetch.execute(plan, request)
    return await outcome if inspect.isawaitable(outcome) else outcome  # type: ignore[no-any-return]


async def execute_planned(
    plans: OperationPlans,
    query: str | None,
    *,
    variable_values: dict[str, Any] | None,
    context_value: Any,
    root_value: Any,
    operation_name: str | None,
    allowed_operation_types: Iterable[StrawberryOperationType],
    operation_extensions: dict[str, Any] | None,
    policy: ErrorPolicy,
    tracing: OperationTracing | None = None,
) -> ExecutionResult:
    """`strawberry.Schema.execute`'s contract (raised errors included), from a cached plan."""
    plan, operation = plans.select(query, operation_name, allowed_operation_types)
    assert query is not None
    with traced(tracing, query, span_name(operation, operation_name)) as middleware:
        data: dict[str, Any] | None = None
        errors: list[GraphQLError] = list(plan.errors)
        if operation is not None and not errors:
            request = OperationInput(
                operation_name, variable_values, context_value, root_value, operation_extensions, middleware
            )
            result = await run_planned(plans, plan, operation, request)
            data, errors = result.data, list(result.errors or ())
        return ExecutionResult(data=data, errors=policy.apply(errors, context_value))
