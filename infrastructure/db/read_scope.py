"""Read units of work that share one connection per GraphQL request (or subscription event).

`RequestReads` is the `reads` port the use cases are bound to. Outside a scope each call
gives a unit of work of its own (an autocommit session, as before). Inside `scope()` (the
GraphQL layer enters one around a query's execution and around each subscription event)
every read unit of the request shares one `ReadScope`: one session, opened at the first
read and closed when the scope ends, so a page and all its loaders' batches take one
connection from the pool and send no BEGIN/ROLLBACK (autocommit). A scope that is never
read through costs a context variable and nothing else.

graphql-core runs async resolvers concurrently, and neither an asyncpg connection nor an
AsyncSession allows two statements at once: a unit holds the scope's lock for its whole
`async with` block. A unit that failed (an error, a cancellation mid-statement) closes the
session, so a connection in an unknown state goes back to the pool (which resets or
discards it) and the next unit opens a fresh one.

Only where a request may hold a pooled connection while it waits for another one without
starving the pool (PostgreSQL): the embedded SQLite engine has one connection for the
process, so there every read keeps its own short unit of work.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infrastructure.db.uow import SqlRepositories, SqlUnitOfWork
from infrastructure.outages import DATABASE, raise_if_outage, translating

_current: contextvars.ContextVar[ReadScope | None] = contextvars.ContextVar("genhub_read_scope", default=None)


class ReadScope:
    """One lazily opened session shared by the read units of one request, one unit at a time.

    `async with` makes it the current scope; nothing else happens until a unit reads.
    """

    __slots__ = ("_closed", "_factory", "_lock", "_repositories", "_session", "_token")

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        self._lock: asyncio.Lock | None = None
        self._session: AsyncSession | None = None
        self._repositories: SqlRepositories | None = None
        self._closed = False
        self._token: contextvars.Token[ReadScope | None] | None = None

    async def __aenter__(self) -> ReadScope:
        self._token = _current.set(self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        await self.close()

    @property
    def opened(self) -> bool:
        """A session (and so a pooled connection, once it ran a statement) is held."""
        return self._session is not None

    @property
    def closed(self) -> bool:
        return self._closed

    async def acquire(self) -> SqlRepositories:
        if self._lock is None:
            self._lock = asyncio.Lock()
        await self._lock.acquire()
        if self._repositories is None:  # after close() too: release() drops it again
            self._session = self._factory()
            self._repositories = SqlRepositories(self._session)
        return self._repositories

    async def release(self, failed: bool) -> None:
        assert self._lock is not None
        try:
            if failed or self._closed:
                await self._drop()
        finally:
            self._lock.release()

    async def put_back(self) -> None:
        """Return the connection to the pool now, when no unit holds it; the scope stays open, and
        its next unit opens a session again (the compiled path, graph/compiled_reads.py, after its
        account check, so that the request does not hold it idle while its statement runs)."""
        if self._session is not None and (self._lock is None or not self._lock.locked()):
            await self._drop()

    async def close(self) -> None:
        """Return the connection to the pool; a unit asked for afterwards gets one of its own."""
        self._closed = True
        # A unit holding the lock drops the session itself when it leaves.
        if self._session is not None and (self._lock is None or not self._lock.locked()):
            await self._drop()

    async def _drop(self) -> None:
        session, self._session, self._repositories = self._session, None, None
        if session is not None:
            # Shielded: a cancelled request still gives its connection back (as AsyncSession's own exit does).
            await asyncio.shield(session.close())


class ScopedUnitOfWork(SqlRepositories):
    """A read unit of work on its request's `ReadScope`: `async with` holds the scope's lock."""

    def __init__(self, scope: ReadScope) -> None:
        self._scope = scope

    async def __aenter__(self) -> ScopedUnitOfWork:
        self._take(await self._scope.acquire())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with translating(DATABASE):
            await self._scope.release(failed=exc_info[0] is not None)
        raise_if_outage(exc_info[1], DATABASE)  # as a unit of work's: ServiceUnavailable

    async def commit(self) -> None:
        """Reads only: an autocommit session has nothing to commit."""

    async def rollback(self) -> None:
        """Reads only: nothing to undo."""


class RequestReads:
    """The read unit-of-work factory: a unit of the current request's scope when one is open, else its own."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], *, shared: bool) -> None:
        self.session_factory = session_factory
        self.shared = shared  # False: scopes are not kept (SQLite), every read has its own unit

    def __call__(self) -> SqlUnitOfWork | ScopedUnitOfWork:
        scope = _current.get()
        if scope is None or scope.closed:
            return SqlUnitOfWork(self.session_factory)
        return ScopedUnitOfWork(scope)

    def scope(self) -> AbstractAsyncContextManager[ReadScope | None]:
        """`async with reads.scope():` the reads inside share one session, closed on exit."""
        return ReadScope(self.session_factory) if self.shared else _UNSHARED

    async def put_back(self) -> None:
        """The current scope's connection back to the pool, if it holds one idle (`ReadScope.put_back`)."""
        scope = _current.get()
        if scope is not None:
            await scope.put_back()


_UNSHARED: AbstractAsyncContextManager[None] = contextlib.nullcontext()
