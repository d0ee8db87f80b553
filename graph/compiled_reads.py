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

from graph.compiled_arguments import nested_values, root_args
from graph.context import Context
from graph.selections import NestedField, collect, directive_variables, selected
from infrastructure.db.json_reads import roots
from infrastructure.db.json_reads.marks import url_requests, with_urls
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


@dataclass(frozen=True, slots=True)
class CompiledSelection:
    """What an operation compiles to for one set of directive values: its root fields, the nested
    fields whose values are bound per request (by slot), and whether its answer has URLs to sign."""

    roots: tuple[RootField, ...]
    nested: tuple[NestedField, ...]
    signs_urls: bool


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
    ) -> CompiledSelection | None:
        query = self._schema.query_type
        if operation.operation is not OperationType.QUERY or query is None:
            return None
        by_name = fragments
        nested: list[NestedField] = []
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
                tree = selected(self._schema, by_name, variables, runtime, group, nested)
                found.append(RootField(Selected(name, key, tree), definition, group[0]))
        except NotCompilable:
            return None
        if not found:
            return None
        signs_urls = any(n.type_name == "Asset" and n.name == "url" for n in nested)
        return CompiledSelection(tuple(found), tuple(nested), signs_urls)

    def _statement(
        self,
        fields: tuple[RootField, ...],
        variants: tuple[tuple[str, ...], ...],
        nested: tuple[tuple[str, ...], ...],
    ) -> str | None:
        try:
            return roots.statement([(f.selected, v) for f, v in zip(fields, variants, strict=True)], nested)
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
        compiled: CompiledSelection | None = memo[key]
        if compiled is None:
            return None
        fields = compiled.roots
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
            nested = [nested_values(n, coerced, context) for n in compiled.nested]
        except Exception:
            return None
        variants = tuple(roots.variant_of(a) for a in args)
        nested_variants = tuple(tuple(values) for values in nested)
        sql_key = (key, variants, nested_variants)
        if sql_key not in memo:
            memo[sql_key] = self._statement(fields, variants, nested_variants)
        sql: str | None = memo[sql_key]
        if sql is None:
            return None
        params = [value for a in args for value in roots.values_of(a).values()]
        params += [value for values in nested for value in values.values()]
        try:
            text = await context.services.json_reads.fetch(sql, params)
            if compiled.signs_urls:
                text = await self._signed_urls(text, context)
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

    @staticmethod
    async def _signed_urls(text: str, context: Context) -> str:
        """The answer with its assets' URLs signed in one batch, as the resolver signs each one."""
        wanted = url_requests(text)
        if not wanted:
            return text
        return with_urls(text, await context.services.chunks.asset_urls(wanted))
