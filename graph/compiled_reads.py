"""Compiled reads on the GraphQL side: which operations compile, their arguments, and running them.

A query whose root fields and selections are all described by infrastructure/db/json_reads
is answered by one SQL statement that returns the JSON of `data`
(`CompiledReads.answer`); everything else, and every request where anything is unusual
(no viewer, a gone account, an argument the resolvers would refuse, a failing statement),
gets `None` here and runs through the resolvers, which then give the answer or the error
exactly as they always do. So the compiled path only ever answers what the resolver path
would answer without an error, and never answers with an error of its own.

Per operation, what does not depend on the request is kept: the selection tree (fragments
and directives resolved; directives on variables key it by their values) and each
variant's statement text. Per request: the variables are coerced, the root arguments
parsed by the resolvers' own functions, and the values bound.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from domain.pagination import PageRequest
from domain.users import Principal
from graph.common.ids import lookup_id
from graph.context import Context
from graph.generations.queries import to_domain_filter
from graph.generations.types import GenerationFilter
from graph.selections import collect, directive_variables, selected
from infrastructure.db.json_reads import roots
from infrastructure.db.json_reads.selection import NotCompilable, Selected

log = logging.getLogger("genhub.compiled")

#: Entries of one plan's memo beyond which it is cleared (a client cycling directive values).
MEMO_SIZE = 64


class RawJSON(str):
    """The JSON text of a compiled read's `data`, for a transport that writes it as it is
    (graph/http.py `encode`); nothing else parses it again."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class RootField:
    """A root field of an operation: its selection (argument values filled per request) and its nodes."""

    selected: Selected
    definition: GraphQLField
    node: FieldNode


def root_args(name: str, args: Mapping[str, Any], viewer: Principal, context: Context) -> roots.RootArgs:
    """A root field's arguments, parsed exactly as its resolver parses them (DomainError: let it)."""
    cursors = context.services.cursors
    if name in ("generations", "chunks", "creditLedger"):
        request = PageRequest.parse(args.get("first", 20), args.get("after"), cursors=cursors)
        after = (request.after.created_at, request.after.id) if request.after else None
        page = roots.Page(request.first, after)
        if name != "generations":
            return roots.OwnPageArgs(viewer.user_id, page)  # the viewer's own rows, one page
        given = args.get("filter")  # graphql-core's coerced input: a dict by field name
        flt = to_domain_filter(
            None
            if given is None
            else GenerationFilter(
                status=given.get("status"), board_id=given.get("boardId"), model_id=given.get("modelId")
            )
        )
        statuses = tuple(sorted(s.value for s in flt.statuses))
        return roots.GenerationsArgs(viewer.user_id, page, statuses, flt.board_id, flt.model_id)
    if name == "generation":
        return roots.GenerationArgs(viewer.user_id, viewer.is_admin, lookup_id(args["id"], "generation"))
    if name == "chunk":
        return roots.ChunkArgs(viewer.user_id, lookup_id(args["id"], "chunk"))
    if name == "credits":
        return roots.ViewerArgs(viewer.user_id)
    raise NotCompilable(f"Query.{name}")


class CompiledReads:
    """The compiled path for one schema (see the module docstring).

    `memo`: a dict the caller keeps with the document's plan, so what one document decides
    is kept as long as its plan (and keyed by nothing the client can vary without bound).
    """

    def __init__(self, schema: GraphQLSchema) -> None:
        self._schema = schema

    def _roots(
        self,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> tuple[RootField, ...] | None:
        query = self._schema.query_type
        if operation.operation is not OperationType.QUERY or query is None:
            return None
        by_name = fragments
        try:
            grouped = collect(self._schema, by_name, variables, query, [operation.selection_set])
            found: list[RootField] = []
            for key, group in grouped.items():
                name = group[0].name.value
                definition = query.fields.get(name)
                if name not in roots.ROOTS or definition is None or len(group) != 1:
                    return None
                runtime = get_named_type(definition.type)
                if not isinstance(runtime, GraphQLObjectType):
                    return None
                tree = selected(self._schema, by_name, variables, runtime, group)
                found.append(RootField(Selected(name, key, tree), definition, group[0]))
        except NotCompilable:
            return None
        return tuple(found) or None

    def _statement(self, fields: tuple[RootField, ...], variants: tuple[tuple[str, ...], ...]) -> str | None:
        try:
            return roots.statement([(f.selected, v) for f, v in zip(fields, variants, strict=True)])
        except NotCompilable:
            return None

    async def answer(
        self,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        raw_variables: Mapping[str, Any] | None,
        context: Any,
        memo: dict[Any, Any],
    ) -> dict[str, Any] | RawJSON | None:
        """`data` of the operation from one statement (its JSON text when the transport writes
        it as it is: `Context.raw_answers`), or None: take the resolver path."""
        if not isinstance(context, Context) or context.services.json_reads is None:
            return None
        if operation.operation is not OperationType.QUERY:
            return None
        used: tuple[str, ...] | None = memo.get(("directives", id(operation)))
        if used is None:
            used = memo[("directives", id(operation))] = directive_variables(operation, fragments)
        if not used and memo.get((id(operation), ()), ...) is None:
            return None  # known not to compile whatever the variables: no coercion spent on it
        coerced = get_variable_values(self._schema, operation.variable_definitions or (), dict(raw_variables or {}))
        if isinstance(coerced, list):
            return None  # the resolver path reports the variables' errors
        key = (id(operation), tuple(bool(coerced.coerced.get(n)) for n in used))
        if key not in memo:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[key] = self._roots(operation, fragments, coerced)
        fields: tuple[RootField, ...] | None = memo[key]
        if fields is None:
            return None
        try:
            viewer = context.viewer
            if viewer is None:
                return None
            await context.confirm_account()
            if context.account_gone:
                return None
            args = [
                root_args(f.selected.name, get_argument_values(f.definition, f.node, coerced), viewer, context)
                for f in fields
            ]
        except Exception:
            return None
        variants = tuple(roots.variant_of(a) for a in args)
        sql_key = (key, variants)
        if sql_key not in memo:
            memo[sql_key] = self._statement(fields, variants)
        sql: str | None = memo[sql_key]
        if sql is None:
            return None
        params = [value for a in args for value in roots.values_of(a).values()]
        try:
            text = await context.services.json_reads.fetch(sql, params)
        except Exception:
            log.warning(
                "compiled read failed; answered by the resolvers (operation %s)",
                operation.name.value if operation.name else "-",
                exc_info=True,
            )
            return None
        if context.raw_answers:
            return RawJSON(text)
        data: dict[str, Any] = json.loads(text)
        return data
