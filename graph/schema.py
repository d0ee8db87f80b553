"""Schema assembly: every area's Query/Mutation/Subscription classes merged into one schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from graph.auth.mutations import AuthMutations
from graph.auth.queries import AuthQueries
from graph.boards.mutations import BoardMutations
from graph.boards.queries import BoardQueries
from graph.boundary import guard_schema
from graph.catalogue.mutations import CatalogueMutations
from graph.catalogue.queries import CatalogueQueries
from graph.chunks.mutations import ChunkMutations
from graph.chunks.queries import ChunkQueries
from graph.credits.mutations import CreditMutations
from graph.credits.queries import CreditQueries
from graph.execution import OperationPlans, execute_planned
from graph.extensions import ErrorPolicy
from graph.generations.mutations import GenerationMutations
from graph.generations.queries import GenerationQueries
from graph.limits import QueryLimits, limit_extensions
from graph.subscriptions.credits import CreditSubscriptions
from graph.subscriptions.execution import PerEventMemoExecutionContext
from graph.subscriptions.generations import GenerationSubscriptions

QUERIES: tuple[type, ...] = (
    AuthQueries,
    CreditQueries,
    CatalogueQueries,
    GenerationQueries,
    BoardQueries,
    ChunkQueries,
)
MUTATIONS: tuple[type, ...] = (
    AuthMutations,
    GenerationMutations,
    CreditMutations,
    CatalogueMutations,
    BoardMutations,
    ChunkMutations,
)
SUBSCRIPTIONS: tuple[type, ...] = (GenerationSubscriptions, CreditSubscriptions)

Query = merge_types("Query", QUERIES)
Mutation = merge_types("Mutation", MUTATIONS)


class GenhubSchema(strawberry.Schema):
    """Queries and mutations run from cached operation plans (graph/execution.py) when `limits` are given.

    Subscriptions, and every operation when other extensions are present (tracing, which
    wants its per-resolver hooks), take strawberry's extension path with the same limits.
    Errors are logged once, by the error policy (with the request id), not here too.
    """

    plans: OperationPlans | None = None
    mask_errors: bool = True

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        return None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        if self.plans is None:
            return await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        return await execute_planned(
            self._schema,
            self.plans,
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            allowed_operation_types=allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES,
            operation_extensions=operation_extensions,
            executor_class=self.execution_context_class,
            mask_errors=self.mask_errors,
        )


def build_schema(
    *,
    limits: QueryLimits | None = None,
    extensions: list[Callable[[], SchemaExtension]] | None = None,
    mask_errors: bool = True,
) -> GenhubSchema:
    """The schema; extensions are passed as factories so no instance is shared (strawberry 0.316).

    With `limits`, queries and mutations run from cached plans unless `extensions` (tracing)
    ask for strawberry's per-request lifecycle; subscriptions always take that path.
    """
    subscription: Any = merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None
    schema = GenhubSchema(
        query=Query,
        mutation=Mutation,
        subscription=subscription,
        extensions=[
            lambda: ErrorPolicy(mask=mask_errors, hide_suggestions=bool(limits and limits.hide_suggestions)),
            *(limit_extensions(limits) if limits else []),
            *(extensions or []),
        ],
        execution_context_class=PerEventMemoExecutionContext,
    )
    schema.mask_errors = mask_errors
    guard_schema(schema._schema)
    if limits is not None and not extensions:
        schema.plans = OperationPlans(schema._schema, limits)
    return schema


def export_sdl() -> str:
    return build_schema().as_str().rstrip() + "\n"
