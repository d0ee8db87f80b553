"""outbound_emails: the OutboundMail port (domain/ports.py) on PostgreSQL and SQLite.

Each call is one short transaction of its own (a message is recorded by the task that
delivers it, not inside the change that asked for it). Claims are one conditional UPDATE
on the database's clock, like a generation's lease (generation_leases.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Interval, delete, func, literal, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.types import TIMESTAMP

from domain.emails import EmailMessage, QueuedEmail, QueuedState
from infrastructure.db.tables import OUTBOUND_EMAILS
from infrastructure.outages import DATABASE, translating

o = OUTBOUND_EMAILS.c
PENDING = QueuedState.PENDING
MAX_ERROR = 200


class SqlOutboundMail:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    def _now(self, session: AsyncSession, after: timedelta = timedelta(0)) -> ColumnElement[datetime]:
        if session.bind is not None and session.bind.dialect.name != "postgresql":
            return literal(datetime.now(UTC) + after, TIMESTAMP)
        now: ColumnElement[datetime] = func.clock_timestamp(type_=TIMESTAMP)
        return now + literal(after, Interval()) if after else now

    async def record(self, key: str, message: EmailMessage, *, give_up_after: timedelta) -> uuid.UUID:
        with translating(DATABASE):
            async with self.sessions() as session, session.begin():
                dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
                insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(OUTBOUND_EMAILS)
                await session.execute(
                    insert.values(
                        id=uuid.uuid4(),
                        dedupe_key=key,
                        recipient=message.to,
                        subject=message.subject,
                        body={"text": message.text, "html": message.html},
                        status=PENDING,
                        attempts=0,
                        next_attempt_at=self._now(session),
                        give_up_at=self._now(session, give_up_after),
                        created_at=self._now(session),
                    ).on_conflict_do_nothing(index_elements=["dedupe_key"])
                )
                found = await session.scalar(select(o.id).where(o.dedupe_key == key))
        assert found is not None
        return uuid.UUID(str(found))

    async def claim(self, email_id: uuid.UUID, *, hold: timedelta) -> QueuedEmail | None:
        with translating(DATABASE):
            async with self.sessions() as session, session.begin():
                now = self._now(session)
                row = (
                    await session.execute(
                        update(OUTBOUND_EMAILS)
                        .where(
                            o.id == email_id,
                            o.status == PENDING,
                            o.next_attempt_at <= now,
                            or_(o.claimed_until.is_(None), o.claimed_until <= now),
                        )
                        .values(claimed_until=self._now(session, hold), attempts=o.attempts + 1)
                        .returning(o.id, o.recipient, o.subject, o.body, o.attempts, o.give_up_at)
                    )
                ).first()
        if row is None or row.body is None:
            return None
        html = row.body.get("html")
        message = EmailMessage(
            to=row.recipient, subject=row.subject, text=str(row.body["text"]), html=None if html is None else str(html)
        )
        give_up_at = row.give_up_at if row.give_up_at.tzinfo else row.give_up_at.replace(tzinfo=UTC)
        return QueuedEmail(id=row.id, message=message, attempts=row.attempts, give_up_at=give_up_at)

    async def settle(self, email_id: uuid.UUID, *, state: str, error: str | None = None) -> None:
        with translating(DATABASE):
            async with self.sessions() as session, session.begin():
                await session.execute(
                    update(OUTBOUND_EMAILS)
                    .where(o.id == email_id, o.status == PENDING)
                    .values(
                        status=state,
                        body=null(),  # SQL NULL, not JSON null
                        claimed_until=None,
                        last_error=None if error is None else error[:MAX_ERROR],
                        settled_at=self._now(session),
                    )
                )

    async def retry_later(self, email_id: uuid.UUID, *, after: timedelta, error: str) -> None:
        with translating(DATABASE):
            async with self.sessions() as session, session.begin():
                await session.execute(
                    update(OUTBOUND_EMAILS)
                    .where(o.id == email_id, o.status == PENDING)
                    .values(claimed_until=None, next_attempt_at=self._now(session, after), last_error=error[:MAX_ERROR])
                )

    async def due(self, *, limit: int) -> list[uuid.UUID]:
        with translating(DATABASE):
            async with self.sessions() as session:
                now = self._now(session)
                rows = await session.scalars(
                    select(o.id)
                    .where(
                        o.status == PENDING,
                        o.next_attempt_at <= now,
                        or_(o.claimed_until.is_(None), o.claimed_until <= now),
                    )
                    .order_by(o.next_attempt_at)
                    .limit(limit)
                )
                return [uuid.UUID(str(i)) for i in rows]

    async def purge(self, *, settled_before: timedelta) -> int:
        with translating(DATABASE):
            async with self.sessions() as session, session.begin():
                result = await session.execute(
                    delete(OUTBOUND_EMAILS).where(
                        o.status != PENDING, o.settled_at < self._now(session, -settled_before)
                    )
                )
        return int(getattr(result, "rowcount", 0) or 0)
