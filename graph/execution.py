"""Executing queries and mutations from cached operation plans, without strawberry's per-request machinery.

`Schema.execute` builds an execution context, instantiates every extension and walks
each of them through four lifecycle hooks on every request; for a small mutation that
cost about as much as graphql-core's own execution. Clients send the same few
documents over and over, so all that depends on the document alone (parse with the
token limit, validation with every rule, the selected operation) is computed once
per (document, operation name) and kept in a bounded LRU (`OperationPlans`); what
depends on the request (the cost of `first: $n`, execution, the error policy) runs
per request. Same limits, same rules, same error codes as the extension path
(graph/limits.py, graph/extensions.py), which subscriptions and tracing still use.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
)
from graphql import (
    ExecutionResult as GraphQLExecutionResult,
)
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType

from graph.compiled_reads import CompiledReads
from graph.document_shape import fragments_of
from graph.extensions import classify
from graph.limits import CACHE_SIZE, MAX_CACHED_QUERY, QueryLimits, too_costly, validate
from graph.query_cost import fixed_cost, operation_cost


@dataclass(frozen=True, slots=True)
class OperationPlan:
    """What a document alone decides: parse, validation, and each operation's cost when it is fixed.

    Keyed by the document text only: the operation name selects from `operations` per
    request, so a client varying `operationName` reuses the plan instead of making the
    document be judged again (or pushing other plans out of the cache).
    """

    errors: tuple[GraphQLError, ...]  # syntax, token limit or validation: nothing is executed
    document: DocumentNode | None = None
    operations: Mapping[str | None, OperationDefinitionNode] = field(default_factory=dict)
    fragments: Mapping[str, FragmentDefinitionNode] = field(default_factory=dict)
    costs: Mapping[str | None, int | None] = field(default_factory=dict)  # None: computed per request
    #: What the compiled path decided for this document (graph/compiled_reads.py), kept with the plan.
    compiled: dict[Any, Any] = field(default_factory=dict, compare=False)

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

    def __init__(self, schema: GraphQLSchema, limits: QueryLimits, *, maxsize: int = CACHE_SIZE) -> None:
        self._schema = schema
        self._limits = limits
        self.max_cost = limits.max_cost
        self.hide_suggestions = limits.hide_suggestions
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
        return OperationPlan((), document, operations, fragments, costs)


async def execute_planned(
    schema: GraphQLSchema,
    plans: OperationPlans,
    query: str | None,
    *,
    variable_values: dict[str, Any] | None,
    context_value: Any,
    root_value: Any,
    operation_name: str | None,
    allowed_operation_types: Iterable[StrawberryOperationType],
    operation_extensions: dict[str, Any] | None,
    executor_class: type[Any],
    mask_errors: bool,
) -> ExecutionResult:
    """`strawberry.Schema.execute`'s contract (raised errors included), from a cached plan."""
    if not query:
        raise MissingQueryError
    plan = plans.get(query)
    operation = plan.operation(operation_name)
    if plan.document is not None and operation is None:
        raise CannotGetOperationTypeError(operation_name)
    if operation is not None:
        kind = StrawberryOperationType(operation.operation.value)
        if kind not in allowed_operation_types:
            raise InvalidOperationTypeError(kind)
    errors: list[GraphQLError] = list(plan.errors)
    data: dict[str, Any] | None = None
    if not errors:
        assert plan.document is not None and operation is not None
        variables = variable_values if isinstance(variable_values, dict) else {}
        cost = plan.costs.get(operation_name)
        if cost is None:
            cost = operation_cost(schema, operation, plan.fragments, variables)
        if operation.operation is not OperationType.SUBSCRIPTION and cost > plans.max_cost:
            errors = [too_costly(cost, plans.max_cost, operation)]
        elif (
            compiled := await plans.reads.answer(
                operation, plan.fragments, variable_values, context_value, plan.compiled
            )
        ) is not None:
            data = compiled
        else:
            outcome: Any = execute(
                schema,
                plan.document,
                root_value=root_value,
                context_value=context_value,
                variable_values=variable_values,
                operation_name=operation_name,
                executor_class=executor_class,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # strawberry's own
                operation_extensions=operation_extensions,
                hide_suggestions=plans.hide_suggestions,
            )
            result: GraphQLExecutionResult = await outcome if inspect.isawaitable(outcome) else outcome
            data, errors = result.data, list(result.errors or ())
    if errors:
        request_id = getattr(context_value, "request_id", "-")
        errors = [
            classify(e, mask=mask_errors, request_id=request_id, hide_suggestions=plans.hide_suggestions)
            for e in errors
        ]
    return ExecutionResult(data=data, errors=errors or None)
