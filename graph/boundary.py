"""The boundary every argument crosses before any resolver runs, in one place for the whole schema.

`guard_schema` wraps, once at start-up, the resolver of every field that takes text
(String, ID, JSON, or input objects and lists holding them) and of every root field:

- Text that cannot be stored (NUL characters, unpaired surrogates; see domain/text.py)
  and numbers JSON cannot carry are refused, naming the argument as the client wrote
  it (`email`, `board.name`, `params`). A field whose result union has `InvalidInput`
  answers with it; any other field fails with the INVALID_INPUT error code. The walk
  follows the schema's argument types, so an argument added later is covered as well.
- A root field first asks the access gate whether a verified token is still admitted
  (`Context.confirm_account`): a vanished or suspended account, or an ended session, is
  unauthenticated everywhere (subscriptions: when each one starts). A request made with an API
  key is then held to the key's scopes (domain/api_scopes.py): FORBIDDEN for a field its
  scopes do not cover, and for every field no scope covers.
- A field whose result is a union answers an expected failure (a DomainError) with the
  union's member for it (graph/errors.py maps them); the union, declared once in the
  schema, is the whole list of what the resolver may answer. Anything the union cannot
  carry (Unauthenticated, StorageUnavailable...) becomes a GraphQL error with its code.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    default_field_resolver,
    get_named_type,
)
from strawberry.types.base import get_object_definition

from domain.errors import DomainError, FieldProblem, InvalidInput
from domain.text import text_problem
from graph.errors import to_graphql

#: Scalars whose values are ours to check: text and free-form JSON (Int, Float, Boolean and
#: enums are checked by graphql-core itself).
TEXT_SCALARS = frozenset({"String", "ID", "JSON"})
#: An input reaches this depth only through JSON; deeper values are refused outright.
MAX_DEPTH = 64


def value_problems(value: Any, type_: GraphQLInputType, path: str) -> Iterator[FieldProblem]:
    """Problems of one coerced argument value, named by the input field that holds it.

    Names follow the mutations' own errors: an input object's fields by their GraphQL
    names (`email`, `board.name`), a list or a JSON value by the field that holds it
    (`params`), the place inside told by the message ("(in a string)").
    """
    pending: list[tuple[Any, GraphQLInputType | None, str, int]] = [(value, type_, path, 0)]
    while pending:
        item, kind, where, depth = pending.pop()
        if item is None:
            continue
        if depth > MAX_DEPTH:
            yield FieldProblem(where, f"is nested deeper than {MAX_DEPTH} levels")
            continue
        inside = kind is None  # within a JSON value
        if isinstance(kind, GraphQLNonNull):
            pending.append((item, kind.of_type, where, depth))
        elif isinstance(kind, GraphQLInputObjectType) and isinstance(item, dict):
            for name, field in kind.fields.items():
                key = field.out_name or name
                if key in item:
                    pending.append((item[key], field.type, _join(where, name), depth + 1))
        elif isinstance(item, list | tuple):
            inner = kind.of_type if isinstance(kind, GraphQLList) else None
            pending.extend((v, inner, where, depth + 1) for v in item)
        elif isinstance(item, dict):  # a JSON object: its keys are text too
            for key, v in item.items():
                if isinstance(key, str) and (why := text_problem(key)) is not None:
                    yield FieldProblem(where, f"{why} (in a key)")
                pending.append((v, None, where, depth + 1))
        elif isinstance(item, str):
            if (why := text_problem(item)) is not None:
                yield FieldProblem(where, f"{why} (in a string)" if inside else why)
        elif isinstance(item, float) and not math.isfinite(item):
            yield FieldProblem(where, "must hold only finite numbers" if inside else "must be a finite number")


def argument_problems(field: GraphQLField, arguments: dict[str, Any]) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for name, argument in field.args.items():
        key = argument.out_name or name
        if key in arguments:
            # `input` objects name their fields as the other mutations' errors do (`email`, not `input.email`)
            problems.extend(value_problems(arguments[key], argument.type, "" if name == "input" else name))
    return problems


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _takes_text(argument: GraphQLArgument) -> bool:
    seen: set[str] = set()
    pending: list[Any] = [argument.type]
    while pending:
        named = get_named_type(pending.pop())
        if isinstance(named, GraphQLScalarType) and (named.name in TEXT_SCALARS or named.name not in _BUILT_IN):
            return True
        if isinstance(named, GraphQLInputObjectType) and named.name not in seen:
            seen.add(named.name)
            pending.extend(f.type for f in named.fields.values())
    return False


_BUILT_IN = frozenset({"Int", "Float", "Boolean", "String", "ID"})


def error_members(field: GraphQLField) -> frozenset[str]:
    """Names of the members of the field's result union (empty: not a union)."""
    result = get_named_type(field.type)
    return frozenset(t.name for t in result.types) if isinstance(result, GraphQLUnionType) else frozenset()


def _guarded(field: GraphQLField, resolve: Callable[..., Any], *, root: bool, checks_text: bool) -> Callable[..., Any]:
    members = error_members(field)

    def answer(exc: DomainError) -> Any:
        """The union member for an expected failure; anything the union cannot carry propagates."""
        mapped = to_graphql(exc)
        if mapped is not None and get_object_definition(type(mapped), strict=True).name in members:
            return mapped
        raise exc

    async def guarded(source: Any, info: Any, **arguments: Any) -> Any:
        if root:
            await _admit(info)
        try:
            if checks_text and arguments and (problems := argument_problems(field, arguments)):
                raise InvalidInput(problems)
            result = resolve(source, info, **arguments)
            return await result if inspect.isawaitable(result) else result
        except DomainError as exc:
            if not members:
                raise
            return answer(exc)

    return guarded


async def _admit(info: Any) -> None:
    """A root field: the access gate asked, then an API key's scope (GraphQL errors, never union members:
    UNAUTHENTICATED or FORBIDDEN read the same on every field)."""
    confirm = getattr(info.context, "confirm_account", None)
    if confirm is not None:
        await confirm()
    authorize = getattr(info.context, "authorize_root", None)
    if authorize is not None:
        authorize(info.parent_type.name, info.field_name)


def guard_schema(schema: GraphQLSchema) -> None:
    """Wrap the resolvers that need the boundary (idempotent: a wrapped field is marked)."""
    roots = {t for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t is not None}
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field in named.fields.values():
            if getattr(field, "_genhub_guarded", False):
                continue
            root = named in roots
            checks_text = any(_takes_text(a) for a in field.args.values())
            if not (root or checks_text or error_members(field)):
                continue
            if field.subscribe is not None:
                # checked once, when the subscription starts; `resolve` then only maps each event
                field.subscribe = _guarded(field, field.subscribe, root=root, checks_text=checks_text)
            else:
                resolve = field.resolve or default_field_resolver
                field.resolve = _guarded(field, resolve, root=root, checks_text=checks_text)
            field._genhub_guarded = True
