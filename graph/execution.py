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
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
)
from graphql import (
    ExecutionResult as GraphQLExecutionResult,
)
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType

from graph.extensions import classify
from graph.limits import CACHE_SIZE, QueryLimits, fixed_cost, operation_cost, too_costly


@dataclass(frozen=True, slots=True)
class OperationPlan:
    """What a document and an operation name alone decide."""

    errors: tuple[GraphQLError, ...]  # syntax, token limit or validation: nothing is executed
    document: DocumentNode | None = None
    operation: OperationDefinitionNode | None = None  # None: no (single) operation by that name
    fragments: Mapping[str, FragmentDefinitionNode] | None = None
    cost: int | None = None  # known without the variables (see `fixed_cost`); else computed per request


#: Longer documents are planned on every request instead of being kept: the cache holds its
#: keys, and a request body may be megabytes (a real operation is a few hundred bytes).
MAX_CACHED_QUERY = 16 * 1024


class OperationPlans:
    """A bounded cache of plans (refused documents included: they cost a parse and a validation too)."""

    def __init__(self, schema: GraphQLSchema, limits: QueryLimits, *, maxsize: int = CACHE_SIZE) -> None:
        self._schema = schema
        self._limits = limits
        self.max_cost = limits.max_cost
        self._rules = (*specified_rules, *limits.rules)
        self.cached = functools.lru_cache(maxsize=maxsize)(self._plan)

    def get(self, query: str, operation_name: str | None) -> OperationPlan:
        if len(query) > MAX_CACHED_QUERY:
            return self._plan(query, operation_name)
        return self.cached(query, operation_name)

    def _plan(self, query: str, operation_name: str | None) -> OperationPlan:
        # Kept errors drop their tracebacks: the cache would keep the parser's frames alive.
        try:
            document = parse(query, max_tokens=self._limits.max_tokens)
        except GraphQLError as error:
            return OperationPlan((error.with_traceback(None),))
        except Exception as error:  # RecursionError on absurd nesting: the client's document, not us
            return OperationPlan((GraphQLError(str(error), original_error=error.with_traceback(None)),))
        operation = get_operation_ast(document, operation_name)
        errors = validate_document(self._schema, document, self._rules)
        if errors:
            return OperationPlan(tuple(errors), document, operation)
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        cost = fixed_cost(self._schema, operation, fragments) if operation is not None else None
        return OperationPlan((), document, operation, fragments, cost)


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
    plan = plans.get(query, operation_name)
    operation = plan.operation
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
        cost = (
            plan.cost if plan.cost is not None else operation_cost(schema, operation, plan.fragments or {}, variables)
        )
        if operation.operation is not OperationType.SUBSCRIPTION and cost > plans.max_cost:
            errors = [too_costly(cost, plans.max_cost, operation)]
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
            )
            result: GraphQLExecutionResult = await outcome if inspect.isawaitable(outcome) else outcome
            data, errors = result.data, list(result.errors or ())
    if errors:
        request_id = getattr(context_value, "request_id", "-")
        errors = [classify(e, mask=mask_errors, request_id=request_id) for e in errors]
    return ExecutionResult(data=data, errors=errors or None)
