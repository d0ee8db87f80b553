"""A read unit cancelled while it takes SQLite's one pooled connection gives the connection back.

graphql-core cancels a request's sibling resolvers when one field fails; a read cancelled
between the pool's checkout and its first statement must not keep the process's only
connection (every later request and sweep then waited the pool timeout, a minute, per unit).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from infrastructure.container import Container, open_container
from infrastructure.queue import build_broker
from tests.fixtures.app import app_settings


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    from infrastructure.migrations.runner import ensure_sqlite_dir, upgrade

    settings = app_settings(tmp_path)
    ensure_sqlite_dir(settings.effective_database_url)
    await upgrade(settings.effective_database_url)
    async with open_container(settings, broker=build_broker(settings)) as opened:
        yield opened


def cancel_at_checkout(container: Container) -> None:
    """The next checkout cancels the task taking the connection (a sibling field failing meanwhile)."""
    armed = [True]

    @event.listens_for(container.engine.sync_engine, "checkout")
    def _cancel(*_: Any) -> None:
        if armed:
            armed.clear()
            task = asyncio.current_task()
            assert task is not None
            task.cancel()


async def read_a_user(container: Container) -> None:
    async with container.read_uow() as uow:
        await uow.users.get_by_email("nobody@example.com")


async def test_a_read_cancelled_at_checkout_returns_the_connection(container: Container) -> None:
    # given a connection in the pool and a read that is cancelled as it takes it
    await read_a_user(container)
    cancel_at_checkout(container)
    # when
    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(read_a_user(container))
    # then the connection is back: the next read gets it at once, not after the pool timeout
    assert container.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    await asyncio.wait_for(read_a_user(container), 5)
