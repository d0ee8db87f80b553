"""Migrations run both ways on PostgreSQL, and the models match them (no autogenerate diff)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from infrastructure.db.models import Base
from infrastructure.migrations.runner import downgrade, upgrade
from tests.fixtures.services import PG_ADMIN_DSN, asyncpg_to_sqlalchemy

pytestmark = pytest.mark.postgres


@pytest.fixture
async def empty_database(postgres_dsn: str) -> object:
    name = f"genhub_migrations_{uuid.uuid4().hex[:10]}"  # concurrent test processes each need their own
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield asyncpg_to_sqlalchemy(PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}")
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _diff(url: str) -> list[object]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def compare(sync_conn: Connection) -> list[object]:
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return list(compare_metadata(ctx, Base.metadata))

            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    await upgrade(empty_database)
    assert "generations" in await _tables(empty_database)
    await downgrade(empty_database, "base")
    assert await _tables(empty_database) <= {"alembic_version"}
    await upgrade(empty_database)
    assert {"users", "credit_ledger", "chunks", "board_members", "provider_tasks"} <= await _tables(empty_database)


async def test_models_match_migrations(empty_database: str) -> None:
    await upgrade(empty_database)
    assert await _diff(empty_database) == []


async def test_concurrent_migrations_do_not_race(empty_database: str) -> None:
    import asyncio

    await asyncio.gather(*[upgrade(empty_database) for _ in range(3)])
    assert await _diff(empty_database) == []


async def test_sqlite_upgrade_downgrade_upgrade(tmp_path: object) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    await upgrade(url)
    await downgrade(url, "base")
    await upgrade(url)
    assert await _diff(url) == []
