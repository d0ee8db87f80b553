"""The one place that creates the async engine and session factory (lazily, from settings)."""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from infrastructure.settings import Settings

SERVER_SETTINGS = {"application_name": "genhub"}


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # SQLite allows one writer: a single pooled connection serialises access
        # instead of failing with "database is locked" under concurrent requests.
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        # No pre-ping: it costs a round trip per transaction. A connection broken by a
        # server restart fails once and is discarded (the pool is invalidated on disconnect).
        pool_recycle=1800,
        connect_args={"server_settings": SERVER_SETTINGS},
    )


async def open_driver_pool(engine: AsyncEngine, size: int) -> asyncpg.Pool:
    """A plain asyncpg pool to the engine's PostgreSQL database (same address, credentials and TLS).

    For statements that are a whole transaction on their own (the start of a generation):
    checking a connection out of SQLAlchemy's pool costs more Python per use than asyncpg's
    own pool (bench/generate_parts.py prints both). Close it with `await pool.close()`.
    """
    _, params = engine.dialect.create_connect_args(engine.url)
    return await asyncpg.create_pool(
        **params, min_size=min(2, size), max_size=size, server_settings=SERVER_SETTINGS, reset=keep_session
    )


async def keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing to undo.

    asyncpg's default sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`
    on every release, a second round trip for every statement. This pool runs single
    autocommit statements that change no session state (no SET, LISTEN, cursor or
    advisory lock); asyncpg still rolls back a transaction left open before calling this.
    """


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
