"""Schema assembly: every area's Query/Mutation/Subscription classes merged into one schema."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

import strawberry
from graphql import GraphQLSchema
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.tools import merge_types
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from graph.admin.mutations import AdminMutations
from graph.admin.queries import AdminQueries
from graph.api_keys.mutations import ApiKeyMutations
from graph.api_keys.queries import ApiKeyQueries
from graph.auth.mutations import AuthMutations, SessionMutations
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
from graph.execution import OperationPlans, OperationTracing, execute_planned
from graph.exports.mutations import DataExportMutations
from graph.exports.queries import DataExportQueries
from graph.extensions import ErrorPolicy
from graph.generations.mutations import GenerationMutations
from graph.generations.queries import GenerationQueries
from graph.limits import QueryLimits, query_limits
from graph.nodes import NodeQueries
from graph.streaming import stream_planned
from graph.subscriptions.credits import CreditSubscriptions
from graph.subscriptions.execution import PerEventMemoExecutionContext
from graph.subscriptions.generations import GenerationSubscriptions
from graph.webhooks.mutations import WebhookMutations
from graph.webhooks.queries import WebhookQueries
from infrastructure.settings import Settings

QUERIES: tuple[type, ...] = (
    AuthQueries,
    CreditQueries,
    CatalogueQueries,
    GenerationQueries,
    BoardQueries,
    ChunkQueries,
    DataExportQueries,
    WebhookQueries,
    AdminQueries,
    ApiKeyQueries,
    NodeQueries,
)
MUTATIONS: tuple[type, ...] = (
    AuthMutations,
    SessionMutations,
    GenerationMutations,
    CreditMutations,
    CatalogueMutations,
    BoardMutations,
    ChunkMutations,
    DataExportMutations,
    WebhookMutations,
    AdminMutations,
    ApiKeyMutations,
)
SUBSCRIPTIONS: tuple[type, ...] = (GenerationSubscriptions, CreditSubscriptions)

Query = merge_types("Query", QUERIES)
Mutation = merge_types("Mutation", MUTATIONS)


class GenhubSchema(strawberry.Schema):
    """Every operation runs from the schema's operation plans (graph/execution.py, graph/streaming.py).

    `execute` (HTTP), `stream` and `subscribe` (WebSocket) parse, validate and cost a document
    through the one plan cache, run it with the plan's fetch, apply the error policy and,
    when tracing is on, emit the spans. Strawberry's extension lifecycle is not used;
    `execute_sync` stays strawberry's own, for in-process callers (`introspect`): no
    transport calls it. Errors are logged once, by the error policy (with the request id).
    """

    plans: OperationPlans
    policy: ErrorPolicy
    tracing: OperationTracing | None = None

    @property
    def graphql_schema(self) -> GraphQLSchema:
        """graphql-core's schema. Strawberry keeps it only as `_schema` (it has no public accessor,
        0.341): this is the one place that reads it."""
        return self._schema

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
        return await execute_planned(
            self.plans,
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            allowed_operation_types=allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES,
            operation_extensions=operation_extensions,
            policy=self.policy,
            tracing=self.tracing,
        )

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> AsyncGenerator[ExecutionResult, None]:
        return stream_planned(
            self.plans,
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            allowed_operation_types=allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES,
            operation_extensions=operation_extensions,
            policy=self.policy,
            tracing=self.tracing,
        )

    async def subscribe(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> AsyncGenerator[ExecutionResult, None]:
        return await self.stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types=(OperationType.SUBSCRIPTION,),
        )


def default_limits() -> QueryLimits:
    """The limits of the settings' defaults, environment not read (the SDL export, tests)."""
    return query_limits(Settings.model_construct())


def build_schema(
    *,
    limits: QueryLimits | None = None,
    mask_errors: bool = True,
    tracing: OperationTracing | None = None,
) -> GenhubSchema:
    """The schema with its plan cache (`limits`: the defaults when not given) and optional spans (graph/tracing.py)."""
    limits = limits or default_limits()
    subscription: Any = merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None
    schema = GenhubSchema(
        query=Query,
        mutation=Mutation,
        subscription=subscription,
        execution_context_class=PerEventMemoExecutionContext,
    )
    schema.plans = OperationPlans(schema.graphql_schema, limits, executor_class=PerEventMemoExecutionContext)
    schema.policy = ErrorPolicy(mask=mask_errors, hide_suggestions=limits.hide_suggestions)
    schema.tracing = tracing
    guard_schema(schema.graphql_schema)
    return schema


def export_sdl() -> str:
    return build_schema().as_str().rstrip() + "\n"
