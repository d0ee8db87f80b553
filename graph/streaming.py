"""Operations over WebSocket from the same plans: `strawberry.Schema.stream`'s contract for its transports.

graphql-transport-ws runs every operation through `Schema.stream`, legacy graphql-ws
subscriptions through `Schema.subscribe` (graph/schema.py routes both here). The first
result is a `PreExecutionError` when nothing ran (the transports answer it with an
`error` message, or close with 4400 for a syntax error or no such operation); then one
`ExecutionResult` for a query or mutation, one per event for a subscription. Every
error gets the error policy before it is sent, except those raised before an operation
was selected: the transports read their type.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType as StrawberryOperationType

from graph.context import read_scope
from graph.execution import (
    OperationInput,
    OperationPlan,
    OperationPlans,
    OperationTracing,
    run_planned,
    span_name,
    traced,
)
from graph.extensions import ErrorPolicy

PLURALS = {
    StrawberryOperationType.QUERY: "queries",
    StrawberryOperationType.MUTATION: "mutations",
    StrawberryOperationType.SUBSCRIPTION: "subscriptions",
}


def pre_execution_error(error: Exception) -> GraphQLError:
    """The error strawberry's `stream` yields for what `Schema.execute` raises (same messages)."""
    if isinstance(error, CannotGetOperationTypeError):
        return GraphQLError(error.as_http_error_reason(), original_error=error)
    if isinstance(error, InvalidOperationTypeError):
        return GraphQLError(f"{PLURALS[error.operation_type]} are not allowed", original_error=error)
    return GraphQLError(str(error), original_error=error)


def root_field(selections: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]) -> FieldNode | None:
    """A subscription's one root field (validation allows one), through fragments if need be."""
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            return selection
        inner: SelectionSetNode | None = None
        if isinstance(selection, InlineFragmentNode):
            inner = selection.selection_set
        else:
            fragment = fragments.get(selection.name.value) if isinstance(selection, FragmentSpreadNode) else None
            inner = fragment.selection_set if fragment is not None else None
        found = root_field(inner, fragments) if inner is not None else None
        if found is not None:
            return found
    return None


def failed_root_field(error: Exception, plan: OperationPlan, operation: OperationDefinitionNode) -> GraphQLError:
    """An exception out of a subscription's event stream, located at its root field as graphql-core locates an
    error of the subscribe resolver: the error policy then codes a domain error and masks an unexpected one."""
    if isinstance(error, GraphQLError):
        return error
    field = root_field(operation.selection_set, plan.fragments)
    if field is None:
        return GraphQLError(str(error), original_error=error)
    key = (field.alias or field.name).value
    return GraphQLError(str(error), [field], path=[key], original_error=error)


async def stream_planned(
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
) -> AsyncGenerator[ExecutionResult, None]:
    try:
        plan, operation = plans.select(query, operation_name, allowed_operation_types)
    except (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError) as error:
        yield PreExecutionError(data=None, errors=[pre_execution_error(error)])
        return
    if operation is None:  # it did not parse: a GraphQLSyntaxError closes graphql-transport-ws with 4400
        yield PreExecutionError(data=None, errors=list(plan.errors))
        return
    assert query is not None
    with traced(tracing, query, span_name(operation, operation_name)) as middleware:
        if plan.errors:
            yield PreExecutionError(data=None, errors=policy.apply(list(plan.errors), context_value))
            return
        request = OperationInput(
            operation_name, variable_values, context_value, root_value, operation_extensions, middleware
        )
        if operation.operation is not OperationType.SUBSCRIPTION:
            try:
                result = await run_planned(plans, plan, operation, request)
            except Exception as error:  # as strawberry's stream: the client gets an error, the socket stays
                yield PreExecutionError(data=None, errors=policy.apply([pre_execution_error(error)], context_value))
                return
            yield ExecutionResult(data=result.data, errors=policy.apply(list(result.errors or ()), context_value))
            return
        async with contextlib.aclosing(_events(plan, operation, request, policy)) as events:
            async for event in events:
                yield event


async def _events(
    plan: OperationPlan, operation: OperationDefinitionNode, request: OperationInput, policy: ErrorPolicy
) -> AsyncGenerator[ExecutionResult, None]:
    """A subscription: an error result when it cannot start, else one result per event until the stream ends."""
    assert plan.fetch is not None
    try:
        outcome: Any = plan.fetch.subscribe(plan, request)
        if inspect.isawaitable(outcome):
            outcome = await outcome
    except Exception as error:
        yield ExecutionResult(
            data=None, errors=policy.apply([failed_root_field(error, plan, operation)], request.context)
        )
        return
    if isinstance(outcome, GraphQLExecutionResult):  # variables that do not coerce, a failing subscribe resolver
        yield PreExecutionError(data=None, errors=policy.apply(list(outcome.errors or ()), request.context))
        return
    events: AsyncIterator[GraphQLExecutionResult] = outcome
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        try:
            while True:
                # Each event is read and its selection executed in a read scope of its own:
                # a subscription holds no connection between events.
                async with read_scope(request.context):
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        break
                yield ExecutionResult(data=event.data, errors=policy.apply(list(event.errors or ()), request.context))
        except Exception as error:  # graphql-core lets the event stream's own exceptions through
            yield ExecutionResult(
                data=None, errors=policy.apply([failed_root_field(error, plan, operation)], request.context)
            )
