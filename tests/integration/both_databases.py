"""A Container on each database the product runs on: the session's PostgreSQL (emptied) and a
fresh, migrated SQLite file. Tests that hold for both import `database` and `container`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from infrastructure.container import Container, open_container
from infrastructure.migrations.runner import ensure_sqlite_dir, upgrade
from infrastructure.queue import build_broker
from tests.fixtures.app import SettingsFactory
from tests.fixtures.services import asyncpg_to_sqlalchemy, empty_tables


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def database(request: pytest.FixtureRequest) -> str | None:
    """The asyncpg DSN of the session's PostgreSQL database, or None for SQLite."""
    return request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None


@pytest.fixture
async def container(database: str | None, make_settings: SettingsFactory) -> AsyncIterator[Container]:
    if database is not None:
        await empty_tables(database)
        settings = make_settings(database_url=asyncpg_to_sqlalchemy(database))
    else:
        settings = make_settings()
        ensure_sqlite_dir(settings.effective_database_url)
        await upgrade(settings.effective_database_url)
    async with open_container(settings, broker=build_broker(settings)) as opened:
        yield opened
