"""Compiled reads on the GraphQL side: which operations compile, their arguments, and running them.

A query whose root fields and selections are all described by infrastructure/db/json_reads
is answered by one SQL statement that returns the JSON of `data`
(`CompiledReads.answer`); everything else, and every request where anything is unusual
(no viewer, a gone account, an argument the resolvers would refuse, a failing statement),
gets `None` here and runs through the resolvers, which then give the answer or the error
exactly as they always do. So the compiled path only ever answers what the resolver path
would answer without an error, and never answers with an error of its own.

Per operation, what does not depend on the request is kept in the plan's bounded memo
(graph/compiled_memo.py): the selection tree (fragments and directives resolved; the exact
values of the variables directives read key it, null and absent apart from false) and each
variant's statement text. What the compiled path cannot decide (a directive the resolvers
refuse, such as `@include(if: $x)` with `$x` null; any failure building a statement) and a
statement PostgreSQL refused are remembered as not compiled for that key, logged once, and
answered by the resolvers. Per request: the variables are coerced, the root arguments
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
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from graph.compiled_arguments import nested_values, root_args
from graph.compiled_memo import CompiledMemo
from graph.context import Context
from graph.selections import NestedField, collect, directive_variables, selected
from infrastructure.db.json_reads import roots
from infrastructure.db.json_reads.marks import url_requests, with_urls
from infrastructure.db.json_reads.runner import StatementRefused
from infrastructure.db.json_reads.selection import NotCompilable, Selected

log = logging.getLogger("genhub.compiled")


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


def directive_key(coerced: Mapping[str, Any], used: tuple[str, ...]) -> tuple[str, ...]:
    """The exact values of the variables directives read: `null` and an absent variable are
    kept apart from `false` (the resolvers refuse a null `if`, and skip nothing for false)."""
    return tuple(json.dumps(coerced[name], sort_keys=True, default=repr) if name in coerced else "" for name in used)


def _operation_name(operation: OperationDefinitionNode) -> str:
    return operation.name.value if operation.name else "-"


class CompiledReads:
    """The compiled path for one schema (see the module docstring).

    `memo`: a CompiledMemo the caller keeps with the document's plan, so what one document
    decides is kept as long as its plan, within the memo's bounds.
    """

    def __init__(self, schema: GraphQLSchema) -> None:
        self._schema = schema

    def _roots(
        self,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> CompiledSelection | None:
        """The operation's selection for these directive values, or None (logged: once per memo entry)."""
        try:
            return self._collect_roots(operation, fragments, variables)
        except NotCompilable:
            return None
        except GraphQLError as error:
            # A directive the resolvers refuse (a null `if`): they answer the request with that error.
            log.info("not compiled: %s (operation %s)", error.message, _operation_name(operation))
            return None
        except Exception:
            log.warning("not compiled: unexpected error (operation %s)", _operation_name(operation), exc_info=True)
            return None

    def _collect_roots(
        self,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> CompiledSelection | None:
        query = self._schema.query_type
        if operation.operation is not OperationType.QUERY or query is None:
            return None
        nested: list[NestedField] = []
        grouped = collect(self._schema, fragments, variables, query, [operation.selection_set])
        found: list[RootField] = []
        for key, group in grouped.items():
            name = group[0].name.value
            definition = query.fields.get(name)
            if name not in roots.ROOTS or definition is None or len(group) != 1:
                return None
            runtime = get_named_type(definition.type)
            if not isinstance(runtime, GraphQLObjectType):
                return None
            tree = selected(self._schema, fragments, variables, runtime, group, nested)
            found.append(RootField(Selected(name, key, tree), definition, group[0]))
        if not found:
            return None
        signs_urls = any(n.type_name == "Asset" and n.name == "url" for n in nested)
        return CompiledSelection(tuple(found), tuple(nested), signs_urls)

    def _statement(
        self,
        operation: OperationDefinitionNode,
        fields: tuple[RootField, ...],
        variants: tuple[tuple[str, ...], ...],
        nested: tuple[tuple[str, ...], ...],
    ) -> str | None:
        try:
            return roots.statement([(f.selected, v) for f, v in zip(fields, variants, strict=True)], nested)
        except NotCompilable:
            return None
        except Exception:
            name = _operation_name(operation)
            log.warning("not compiled: building the statement failed (operation %s)", name, exc_info=True)
            return None

    async def answer(
        self,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        raw_variables: Mapping[str, Any] | None,
        context: Any,
        memo: CompiledMemo,
    ) -> dict[str, Any] | RawJSON | None:
        """`data` of the operation from one statement (its JSON text when the transport writes
        it as it is: `Context.raw_answers`), or None: take the resolver path."""
        if not isinstance(context, Context) or context.services.json_reads is None:
            return None
        if operation.operation is not OperationType.QUERY:
            return None
        used = memo.get(("directives", id(operation)))
        if not isinstance(used, tuple):
            used = directive_variables(operation, fragments)
            memo.put(("directives", id(operation)), used)
        if not used and memo.get((id(operation), ()), ...) is None:
            return None  # known not to compile whatever the variables: no coercion spent on it
        coerced = get_variable_values(self._schema, operation.variable_definitions or (), dict(raw_variables or {}))
        if isinstance(coerced, list):
            return None  # the resolver path reports the variables' errors
        key = (id(operation), directive_key(coerced.coerced, used))
        compiled = memo.get(key, ...)
        if compiled is ...:
            compiled = self._roots(operation, fragments, coerced)
            memo.put(key, compiled)
        if not isinstance(compiled, CompiledSelection):
            return None
        fields = compiled.roots
        try:
            await context.authenticate()
            viewer = context.viewer
            if viewer is None:
                return None
            await context.confirm_account()
            if context.access_refused is not None:
                return None
            if viewer.scopes is not None:
                for f in fields:  # an API key's scopes: the resolver path refuses what they do not cover
                    context.authorize_root("Query", f.selected.name)
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
        sql = memo.get(sql_key, ...)
        if sql is ...:
            sql = self._statement(operation, fields, variants, nested_variants)
            memo.put(sql_key, sql)
        if not isinstance(sql, str):
            return None
        params = [value for a in args for value in roots.values_of(a).values()]
        params += [value for values in nested for value in values.values()]
        try:
            # The account check may have opened the request's read session: the statement runs on the
            # driver pool, so that connection goes back now rather than wait idle (the resolver path,
            # should it answer after all, opens the session again).
            await context.services.return_read_connection()
            text = await context.services.json_reads.fetch(sql, params)
            if compiled.signs_urls:
                text = await self._signed_urls(text, context)
        except StatementRefused:
            # The same text would be refused again: not compiled for this variant from now on.
            memo.put(sql_key, None)
            log.warning(
                "compiled read refused by the database; not compiled again for this variant (operation %s)",
                _operation_name(operation),
                exc_info=True,
            )
            return None
        except Exception:
            log.warning(
                "compiled read failed; answered by the resolvers (operation %s)",
                _operation_name(operation),
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
