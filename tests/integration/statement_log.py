"""What an app sends to PostgreSQL through its SQLAlchemy engine: statements, connection checkouts and
checkins, and the transaction commands asyncpg puts on the wire (BEGIN, COMMIT, ROLLBACK).

SQLAlchemy's `before_cursor_execute` sees every statement it runs; a transaction's BEGIN and
its end are sent by asyncpg itself, so each checked-out connection also gets an asyncpg query
logger (it sees the simple-protocol commands, which is how asyncpg sends those). Only what the
capturing task and the tasks it starts send is kept (a context variable): the app's own
background tasks (the embedded scheduler's polls) use the same engine meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_capturing: contextvars.ContextVar[StatementLog | None] = contextvars.ContextVar("statement_log", default=None)
TRANSACTION_COMMANDS = ("BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", "SAVEPOINT", "RELEASE")


@dataclass
class StatementLog:
    statements: list[str] = field(default_factory=list)
    wire: list[str] = field(default_factory=list)  # what asyncpg's query logger saw
    checkouts: int = 0
    checkins: int = 0

    @property
    def held(self) -> int:
        """Connections checked out and not yet back in the pool, now."""
        return self.checkouts - self.checkins

    @property
    def transaction_commands(self) -> list[str]:
        return [q for q in self.wire if q.strip().upper().startswith(TRANSACTION_COMMANDS)]

    async def settled(self) -> StatementLog:
        """asyncpg calls its query loggers soon after, not during, the command: let them run."""
        for _ in range(3):
            await asyncio.sleep(0)
        return self


@contextmanager
def statements_of(engine: AsyncEngine) -> Iterator[StatementLog]:
    """Everything `engine` sends while the block runs."""
    log = StatementLog()
    sync = engine.sync_engine

    def logged(record: Any) -> None:
        if _capturing.get() is log:
            log.wire.append(record.query)

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if _capturing.get() is log:
            log.statements.append(statement)

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if _capturing.get() is log:
            log.checkouts += 1
        dbapi_connection.driver_connection.add_query_logger(logged)

    def on_checkin(dbapi_connection: Any, _record: Any) -> None:
        if _capturing.get() is log:
            log.checkins += 1
        if dbapi_connection is not None:
            dbapi_connection.driver_connection.remove_query_logger(logged)

    listeners = [("before_cursor_execute", on_statement), ("checkout", on_checkout), ("checkin", on_checkin)]
    for name, listener in listeners:
        event.listen(sync, name, listener)
    token = _capturing.set(log)
    try:
        yield log
    finally:
        _capturing.reset(token)
        for name, listener in listeners:
            event.remove(sync, name, listener)
