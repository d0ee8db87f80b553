"""Schema assembly: every area's Query/Mutation/Subscription classes merged into one schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from graph.auth.mutations import AuthMutations
from graph.auth.queries import AuthQueries
from graph.boards.mutations import BoardMutations
from graph.boards.queries import BoardQueries
from graph.catalogue.mutations import CatalogueMutations
from graph.catalogue.queries import CatalogueQueries
from graph.chunks.mutations import ChunkMutations
from graph.chunks.queries import ChunkQueries
from graph.credits.mutations import CreditMutations
from graph.credits.queries import CreditQueries
from graph.extensions import ErrorPolicy
from graph.generations.mutations import GenerationMutations
from graph.generations.queries import GenerationQueries
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
    """Errors are logged once, by the ErrorPolicy extension (with the request id), not here too."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        return None


def build_schema(
    *, extensions: list[Callable[[], SchemaExtension]] | None = None, mask_errors: bool = True
) -> strawberry.Schema:
    """The schema; extensions are passed as factories so no instance is shared (strawberry 0.316)."""
    subscription: Any = merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None
    return GenhubSchema(
        query=Query,
        mutation=Mutation,
        subscription=subscription,
        extensions=[lambda: ErrorPolicy(mask=mask_errors), *(extensions or [])],
        execution_context_class=PerEventMemoExecutionContext,
    )


def export_sdl() -> str:
    return build_schema().as_str().rstrip() + "\n"
