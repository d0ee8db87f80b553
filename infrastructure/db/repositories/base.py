"""Shared helpers for repositories: session holder, keyset pagination, dialect-aware upserts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Executable, Row, Select, and_, bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.pagination import PageRequest

#: A row of any columns, read by column name (`row.id`).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


class SqlRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.bind.dialect.name if self.session.bind is not None else "postgresql"

    def insert(self, table: Any) -> Any:
        """An INSERT that supports ON CONFLICT on both PostgreSQL and SQLite."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    async def core_execute(self, stmt: Any, params: dict[str, Any]) -> Any:
        """Execute a Core statement on the session's connection, skipping the ORM execution layer."""
        connection = await self.session.connection()
        return await connection.execute(stmt, params)

    async def rows(self, stmt: Executable, params: dict[str, Any] | None = None) -> Sequence[AnyRow]:
        """A Core read: the rows as tuples of columns, no ORM objects or identity map."""
        connection = await self.session.connection()
        return (await connection.execute(stmt, params)).all()

    async def by_ids(self, table: Any, ids: Sequence[Any]) -> Sequence[AnyRow]:
        """The rows of `table` whose `id` is one of `ids` (each once), read with a statement built once per table.

        The ids are bound when it runs: an `IN` built from literal values makes an expanding parameter that
        lives in a reference cycle of its own, garbage for the collector after each read (bench/teardown.py)."""
        if not ids:
            return []
        stmt = _BY_IDS.get(table.name)
        if stmt is None:
            stmt = _BY_IDS[table.name] = select(table).where(table.c.id.in_(bindparam("ids", expanding=True)))
        return await self.rows(stmt, {"ids": list(set(ids))})

    async def row(self, stmt: Executable) -> AnyRow | None:
        """At most one row (more is an error, as `scalar_one_or_none` was)."""
        connection = await self.session.connection()
        return (await connection.execute(stmt)).one_or_none()

    async def scalars(self, stmt: Executable) -> Sequence[Any]:
        connection = await self.session.connection()
        return (await connection.execute(stmt)).scalars().all()

    def prepared(self, name: str, build: Callable[[Callable[[Any], Any]], Any]) -> Any:
        """A statement built once per dialect and reused with bound parameters.

        Hot paths pass their values at execution time instead of `.values(...)`: the
        statement's cache key stays constant, so SQLAlchemy compiles it once.
        """
        key = (name, self.dialect)
        stmt = _PREPARED.get(key)
        if stmt is None:
            stmt = _PREPARED[key] = build(self.insert)
        return stmt


_PREPARED: dict[tuple[str, str], Any] = {}
_BY_IDS: dict[str, Any] = {}


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes: every timestamp we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def aware_opt(value: datetime | None) -> datetime | None:
    return aware(value) if value is not None else None


def keyset(
    stmt: Select[Any],
    page: PageRequest,
    created: ColumnElement[datetime],
    ident: ColumnElement[Any],
) -> Select[Any]:
    """The rows between the page's cursors in its direction (newest first forward, oldest first
    backward: `PageRequest.cut` turns them round), ties broken by id; one extra row tells
    whether more lie beyond."""
    if page.after is not None:
        stmt = stmt.where(
            or_(created < page.after.created_at, and_(created == page.after.created_at, ident < page.after.id))
        )
    if page.before is not None:
        stmt = stmt.where(
            or_(created > page.before.created_at, and_(created == page.before.created_at, ident > page.before.id))
        )
    if page.backward:
        return stmt.order_by(created.asc(), ident.asc()).limit(page.first + 1)
    return stmt.order_by(created.desc(), ident.desc()).limit(page.first + 1)
