"""outbound_emails on PostgreSQL and SQLite: one record per key, one holder per attempt, bodies dropped."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from domain.emails import EmailMessage, QueuedState
from infrastructure.db.engine import create_session_factory
from infrastructure.db.repositories.outbound_emails import SqlOutboundMail
from infrastructure.db.tables import OUTBOUND_EMAILS
from infrastructure.migrations.runner import ensure_sqlite_dir, upgrade
from tests.fixtures.services import asyncpg_to_sqlalchemy

MESSAGE = EmailMessage(to="ada@example.com", subject="Reset", text="token=abc", html="<b>token=abc</b>")
HOUR = timedelta(hours=1)
HOLD = timedelta(minutes=5)


@pytest.fixture(params=["postgres", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(SQLAlchemy URL, asyncpg DSN or None): the session's PostgreSQL database, or a fresh SQLite file."""
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("postgres_dsn")
        return asyncpg_to_sqlalchemy(dsn), dsn
    return f"sqlite+aiosqlite:///{tmp_path / 'mail.db'}", None


@pytest.fixture
async def outbound(database: tuple[str, str | None]) -> AsyncIterator[SqlOutboundMail]:
    url, dsn = database
    if dsn is not None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("TRUNCATE outbound_emails")
        finally:
            await conn.close()
    else:
        ensure_sqlite_dir(url)
        await upgrade(url)
    engine = create_async_engine(url)
    try:
        yield SqlOutboundMail(create_session_factory(engine))
    finally:
        await engine.dispose()


async def body_of(outbound: SqlOutboundMail, email_id: uuid.UUID) -> object:
    async with outbound.sessions() as session:
        c = OUTBOUND_EMAILS.c
        return (await session.execute(select(c.body.is_(None), c.status).where(c.id == email_id))).one()


async def test_a_key_is_recorded_once(outbound: SqlOutboundMail) -> None:
    # when the same task message records its message three times, two of them at once
    first = await outbound.record("task-1", MESSAGE, give_up_after=HOUR)
    again = await asyncio.gather(*(outbound.record("task-1", MESSAGE, give_up_after=HOUR) for _ in range(2)))
    other = await outbound.record("task-2", MESSAGE, give_up_after=HOUR)
    # then one record stands for the key
    assert again == [first, first] and other != first


async def test_one_attempt_holds_a_message_at_a_time(outbound: SqlOutboundMail) -> None:
    email_id = await outbound.record("task-1", MESSAGE, give_up_after=HOUR)
    # when five attempts claim it at once
    claims = await asyncio.gather(*(outbound.claim(email_id, hold=HOLD) for _ in range(5)))
    # then one holds it, with the whole message, and it is not due for anyone else meanwhile
    [held] = [c for c in claims if c is not None]
    assert held.message == MESSAGE and held.attempts == 1
    assert await outbound.due(limit=10) == []
    assert await outbound.claim(email_id, hold=HOLD) is None


async def test_a_retry_is_due_after_its_delay_and_counts_attempts(outbound: SqlOutboundMail) -> None:
    email_id = await outbound.record("task-1", MESSAGE, give_up_after=HOUR)
    assert await outbound.claim(email_id, hold=HOLD) is not None
    # when the attempt failed and asked for a retry at once
    await outbound.retry_later(email_id, after=timedelta(0), error="smtp: 421")
    # then it is due, and the next claim is attempt 2
    assert await outbound.due(limit=10) == [email_id]
    second = await outbound.claim(email_id, hold=HOLD)
    assert second is not None and second.attempts == 2
    # and a retry far away is not due
    await outbound.retry_later(email_id, after=HOUR, error="smtp: 421")
    assert await outbound.due(limit=10) == [] and await outbound.claim(email_id, hold=HOLD) is None


@pytest.mark.parametrize("state", [QueuedState.SENT, QueuedState.UNDELIVERABLE, QueuedState.FAILED])
async def test_a_settled_message_loses_its_body_and_is_never_claimed_again(
    outbound: SqlOutboundMail, state: str
) -> None:
    email_id = await outbound.record("task-1", MESSAGE, give_up_after=HOUR)
    assert await outbound.claim(email_id, hold=HOLD) is not None
    await outbound.settle(email_id, state=state, error="550 no such user" if state != QueuedState.SENT else None)
    assert tuple(await body_of(outbound, email_id)) == (True, state)
    # a late retry of the same attempt changes nothing
    await outbound.retry_later(email_id, after=timedelta(0), error="late")
    assert await outbound.due(limit=10) == [] and await outbound.claim(email_id, hold=HOLD) is None
    # and recording the same key again finds the settled record, not a new one to send
    assert await outbound.record("task-1", MESSAGE, give_up_after=HOUR) == email_id
    assert await outbound.claim(email_id, hold=HOLD) is None


async def test_a_hold_that_ran_out_makes_the_message_due_again(outbound: SqlOutboundMail) -> None:
    # given an attempt whose worker died (its hold already over)
    email_id = await outbound.record("task-1", MESSAGE, give_up_after=HOUR)
    assert await outbound.claim(email_id, hold=timedelta(seconds=-1)) is not None
    # then the sweep finds it, and another attempt may claim it
    assert await outbound.due(limit=10) == [email_id]
    retaken = await outbound.claim(email_id, hold=HOLD)
    assert retaken is not None and retaken.attempts == 2


async def test_purge_deletes_only_old_settled_records(outbound: SqlOutboundMail) -> None:
    pending = await outbound.record("pending", MESSAGE, give_up_after=HOUR)
    sent = await outbound.record("sent", MESSAGE, give_up_after=HOUR)
    assert await outbound.claim(sent, hold=HOLD) is not None
    await outbound.settle(sent, state=QueuedState.SENT)
    assert await outbound.purge(settled_before=HOUR) == 0
    assert await outbound.purge(settled_before=timedelta(seconds=-1)) == 1
    assert await outbound.due(limit=10) == [pending]
