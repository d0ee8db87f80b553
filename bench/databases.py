"""Fresh, migrated PostgreSQL databases for the bench scripts (BENCH_POSTGRES_DSN names the server)."""

from __future__ import annotations

import os

import asyncpg

PG_ADMIN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def migrated_database(name: str) -> str:
    """Drop `name` if it exists, create it, migrate it to head; its SQLAlchemy URL."""
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    from infrastructure.migrations.runner import upgrade

    await upgrade(url)
    return url


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
