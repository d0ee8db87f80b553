"""Every root field of the schema, with an API key: admitted only with the scope domain/api_scopes.py names,
refused for every key when it names none. Generated from the schema: a new field cannot slip through."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from graphql import GraphQLField

from domain.api_keys import Scope
from domain.api_scopes import FIELD_SCOPES, SESSION_ONLY, SESSION_ONLY_REFUSAL
from domain.errors import Forbidden
from domain.users import Principal, Role
from graph.context import Context, Credentials
from graph.schema import build_schema

SCHEMA = build_schema().graphql_schema
ROOTS = {t.name: t for t in (SCHEMA.query_type, SCHEMA.mutation_type, SCHEMA.subscription_type) if t is not None}
ROOT_FIELDS = sorted(f"{root}.{name}" for root, t in ROOTS.items() for name in t.fields)
KEY = "ghk_" + "a" * 16 + "_" + "b" * 43


class Admitted(Exception):
    """The guard let the call through to the resolver (which a test has no services for)."""


@dataclass
class KeyContext:
    """What the guard asks of a context, with a key's principal; `authorize_root` is Context's own."""

    scopes: frozenset[Scope] | None
    credentials: Credentials = field(default_factory=lambda: Credentials(KEY))

    async def confirm_account(self) -> None:
        return None

    @property
    def viewer(self) -> Principal:
        return Principal(uuid.uuid4(), Role.ADMIN, api_key_id=uuid.uuid4(), scopes=self.scopes)

    authorize_root = Context.authorize_root

    @property
    def services(self) -> Any:
        raise Admitted


@dataclass
class Info:
    context: KeyContext
    parent_type: Any
    field_name: str


def guarded(root_field: GraphQLField) -> Any:
    resolver = root_field.subscribe if root_field.subscribe is not None else root_field.resolve
    assert getattr(root_field, "_genhub_guarded", False), "every root field passes the boundary"
    return resolver


async def call(path: str, scopes: frozenset[Scope] | None) -> str:
    """ "admitted", or the message the guard refused the key with."""
    root, name = path.split(".")
    info = Info(KeyContext(scopes), ROOTS[root], name)
    try:
        result = guarded(ROOTS[root].fields[name])(None, info)
        if hasattr(result, "__anext__"):
            await result.__anext__()
        elif hasattr(result, "__await__"):
            await result
    except Forbidden as exc:
        if str(exc) == SESSION_ONLY_REFUSAL or "API key lacks" in str(exc):
            return str(exc)
        return "admitted"  # refused later by the resolver itself (its own rules)
    except Exception:
        return "admitted"
    return "admitted"


def test_the_map_names_only_fields_of_the_schema_and_session_only_ones_are_unmapped() -> None:
    assert set(FIELD_SCOPES) - set(ROOT_FIELDS) == set()
    assert SESSION_ONLY - set(ROOT_FIELDS) == set()
    assert set(FIELD_SCOPES) & SESSION_ONLY == set()


def test_every_root_field_is_given_a_scope_or_declared_session_only() -> None:
    # a field in neither list would be refused to keys by accident, not by decision
    assert set(ROOT_FIELDS) - set(FIELD_SCOPES) - SESSION_ONLY == set()


@pytest.mark.parametrize("path", ROOT_FIELDS)
async def test_every_root_field_takes_a_key_only_with_its_scope(path: str) -> None:
    needed = FIELD_SCOPES.get(path)
    every = frozenset(Scope)
    if needed is None:
        # not mapped: refused for every key, whatever its scopes
        assert await call(path, every) == SESSION_ONLY_REFUSAL
        return
    # mapped: a key with its scope passes the guard, one with every other scope does not
    assert await call(path, frozenset({needed})) == "admitted"
    assert f"`{needed.value}`" in await call(path, every - {needed})


@pytest.mark.parametrize("path", ROOT_FIELDS)
async def test_sessions_are_not_held_to_scopes(path: str) -> None:
    assert await call(path, None) == "admitted"


def test_the_administrators_fields_need_admin_scopes() -> None:
    admin = {p for p in ROOT_FIELDS if p.split(".")[1].startswith(("admin", "audit", "grant", "upsert", "suspend"))}
    admin |= {"Mutation.reinstateUser", "Mutation.setAdminSetting", "Query.providerHealth"}
    assert {FIELD_SCOPES.get(p) for p in admin} <= {Scope.ADMIN_READ, Scope.ADMIN_WRITE}
