"""How a plan's operations are fetched (`OperationPlan.fetch`, graph/execution.py): the choices there are.

`GraphQLCoreFetch` runs graphql-core's execution with the schema's executor; `CompiledFirst`
answers a query from one SQL statement when graph/compiled_reads.py can, and hands it to
graphql-core otherwise. `OperationPlans` picks one per document when it plans it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import Executor, GraphQLSchema, execute, subscribe
from graphql.pyutils import AwaitableOrValue
from strawberry.execution import optimized_is_awaitable

from graph.compiled_memo import CompiledMemo
from graph.compiled_reads import CompiledReads

if TYPE_CHECKING:
    from graph.execution import OperationInput, OperationPlan


@dataclass(frozen=True, slots=True)
class GraphQLCoreFetch:
    """graphql-core's execution, with the schema's executor (graph/subscriptions/execution.py)."""

    schema: GraphQLSchema
    executor_class: type[Executor[Any]]
    hide_suggestions: bool = False

    def execute(self, plan: OperationPlan, request: OperationInput) -> AwaitableOrValue[GraphQLExecutionResult]:
        assert plan.document is not None
        return execute(
            self.schema,
            plan.document,
            root_value=request.root,
            context_value=request.context,
            variable_values=request.variables,
            operation_name=request.operation_name,
            middleware=request.middleware,
            executor_class=self.executor_class,
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # strawberry's own
            operation_extensions=request.extensions,
            hide_suggestions=self.hide_suggestions,
        )

    def subscribe(
        self, plan: OperationPlan, request: OperationInput
    ) -> AwaitableOrValue[AsyncIterator[GraphQLExecutionResult] | GraphQLExecutionResult]:
        assert plan.document is not None
        return subscribe(
            self.schema,
            plan.document,
            root_value=request.root,
            context_value=request.context,
            variable_values=request.variables,
            operation_name=request.operation_name,
            middleware=request.middleware,
            executor_class=self.executor_class,
            operation_extensions=request.extensions,
            hide_suggestions=self.hide_suggestions,
        )


@dataclass(frozen=True, slots=True)
class CompiledFirst:
    """A compiled read when graph/compiled_reads.py answers the query, else graphql-core (`fallback`).

    One per plan: `memo` keeps what the compiled path decided for this document as long as
    its plan lives, within its bounds (graph/compiled_memo.py, graph/compiled_reads.py
    `CompiledReads.answer`).
    """

    reads: CompiledReads
    fallback: GraphQLCoreFetch
    memo: CompiledMemo = field(default_factory=CompiledMemo, compare=False)

    async def execute(self, plan: OperationPlan, request: OperationInput) -> GraphQLExecutionResult:
        operation = plan.operation(request.operation_name)
        assert operation is not None
        data = await self.reads.answer(operation, plan.fragments, request.variables, request.context, self.memo)
        if data is not None:
            # A RawJSON (JSON text) where the transport writes `data` as it is (Context.raw_answers).
            return GraphQLExecutionResult(cast("dict[str, Any]", data), None)
        outcome: Any = self.fallback.execute(plan, request)
        return await outcome if optimized_is_awaitable(outcome) else outcome  # type: ignore[no-any-return]

    def subscribe(
        self, plan: OperationPlan, request: OperationInput
    ) -> AwaitableOrValue[AsyncIterator[GraphQLExecutionResult] | GraphQLExecutionResult]:
        return self.fallback.subscribe(plan, request)
