"""A compiled read's per-request values: root arguments and nested fields' values, parsed exactly
as their resolvers parse them (a DomainError or NotCompilable: the caller takes the resolver path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql.execution.values import VariableValues, get_argument_values

from domain.catalogue import ModelKind
from domain.users import Principal
from graph.common.connections import page_request
from graph.common.ids import lookup_id
from graph.context import Context
from graph.generations.queries import to_domain_filter
from graph.generations.types import GenerationFilter, url_seconds
from graph.selections import NestedField
from infrastructure.db.json_reads import roots
from infrastructure.db.json_reads.selection import NotCompilable


def _page(args: Mapping[str, Any], context: Context) -> roots.Page:
    request = page_request(
        context.services.cursors, args.get("first"), args.get("after"), args.get("last"), args.get("before")
    )
    if request.backward or request.before is not None:
        raise NotCompilable("a backward page (`last`/`before`) is read by the resolvers")
    after = (request.after.created_at, request.after.id) if request.after else None
    return roots.Page(request.first, after)


def root_args(name: str, args: Mapping[str, Any], viewer: Principal, context: Context) -> roots.RootArgs:
    """A root field's arguments, parsed exactly as its resolver parses them (DomainError: let it)."""
    if name in ("generations", "chunks", "creditLedger"):
        page = _page(args, context)
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
    if name in ("credits", "boards"):
        return roots.ViewerArgs(viewer.user_id)
    if name == "board":
        return roots.BoardArgs(viewer.user_id, lookup_id(args["id"], "board"))
    if name == "models":
        include_inactive = bool(args.get("includeInactive", False))
        if include_inactive and not viewer.is_admin:
            raise NotCompilable("includeInactive is for admins: the resolver refuses it")
        kind = args.get("kind")  # the enum's stored value, as graphql-core coerces it
        return roots.ModelsArgs(include_inactive, None if kind is None else ModelKind(kind).value)
    if name == "presets":
        # A malformed id raises NotFound here: the resolver answers that request ([]).
        given_model = args.get("modelId")
        return roots.PresetsArgs(None if given_model is None else lookup_id(given_model, "model"))
    raise NotCompilable(f"Query.{name}")


def nested_values(field: NestedField, variables: VariableValues, context: Context) -> dict[str, Any]:
    """The bind values of a nested field that takes values per request (graph/selections.py PER_REQUEST)."""
    where = (field.type_name, field.name)
    if where == ("Board", "generations"):
        return roots.page_values(_page(get_argument_values(field.definition, field.node, variables), context))
    if where == ("Board", "invitations"):
        return {"now": context.services.lookups.clock.now()}  # the clock the resolver's loader reads
    if where == ("Asset", "url"):
        args = get_argument_values(field.definition, field.node, variables)
        return {"seconds": url_seconds(args.get("expiresInSeconds", 3600))}
    raise NotCompilable(f"{field.type_name}.{field.name}")
