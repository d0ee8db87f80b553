"""Connection-level failures of PostgreSQL and Redis, told apart from every other error and turned
into `domain.errors.ServiceUnavailable` by the adapters (docs/deploy.md, "When Redis / PostgreSQL / S3
is down").

An outage is the server being unreachable, restarting, refusing connections or out of them, or
a connection dropped mid-statement. A constraint violation, a syntax error or a bad value is
not: those keep their own meaning (and stay unexpected errors when nobody expects them).

An outage before a statement was sent (no connection, none free in the pool, the server refusing
new ones) means nothing was done: `ServiceUnavailable`. One after a write was sent (the connection
dropped mid-statement or mid-COMMIT) leaves its outcome unknown: a block that sends a write says so
(`translating(..., sends_write=True)`) and gets `OutcomeUnknown` for those.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator

import asyncpg
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

from domain.errors import DomainError, OutcomeUnknown, ServiceUnavailable

log = logging.getLogger("genhub.outages")

DATABASE = "database"
REDIS = "redis"
#: Seconds a client is asked to wait: a restart of either server takes a few seconds.
RETRY_AFTER_SECONDS = 5

_POSTGRES_OUTAGES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08, including a connection closed mid-statement
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01: terminated by a restart
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.ConnectionDoesNotExistError,
)
#: asyncpg's InterfaceError is mostly misuse (an operation in progress, a bad cursor); only these are outages.
_CLOSED = ("connection is closed", "pool is closing", "pool is closed")
_REDIS_OUTAGES: tuple[type[BaseException], ...] = (redis_errors.ConnectionError, redis_errors.TimeoutError)
#: A socket that could not connect, was reset or timed out; which server it was for, the caller knows.
_NETWORK_FAILURES: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, socket.gaierror)
#: Failures that come before a statement reaches the server (connecting, a pool checkout, a server
#: refusing new connections, a connection already known to be closed): nothing was executed.
_REFUSED: tuple[type[BaseException], ...] = (
    asyncpg.CannotConnectNowError,  # 57P03
    asyncpg.TooManyConnectionsError,  # 53300
    ConnectionRefusedError,
    socket.gaierror,
    sa_errors.TimeoutError,  # no pooled connection came free in time
)
UNKNOWN = "unknown"
#: How far the chain of causes is followed (SQLAlchemy wraps the driver's error twice).
_CHAIN_DEPTH = 8


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it says caused it: `raise ... from` (`__cause__`) and SQLAlchemy's `orig`.

    Not `__context__`: an error raised while another was being handled (a bug inside an
    `except RedisConnectionError:` block) is not caused by it, and must stay unexpected.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    for _ in range(_CHAIN_DEPTH):
        if current is None or id(current) in seen:
            return
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError holds the driver's error here
        current = orig if isinstance(orig, BaseException) and id(orig) not in seen else current.__cause__


def dependency_down(exc: BaseException) -> str | None:
    """`DATABASE` or `REDIS` when `exc` (or what caused it) says that server cannot be used now;
    `UNKNOWN` for a network failure that does not say which server; None when it is no outage."""
    if isinstance(exc, DomainError):
        return exc.dependency if isinstance(exc, ServiceUnavailable) else None
    for link in _chain(exc):
        if isinstance(link, ServiceUnavailable):
            return link.dependency
        if isinstance(link, _REDIS_OUTAGES):
            return REDIS
        if isinstance(link, _POSTGRES_OUTAGES):
            return DATABASE
        if isinstance(link, asyncpg.InterfaceError) and any(text in str(link) for text in _CLOSED):
            return DATABASE
        if isinstance(link, sa_errors.DBAPIError) and link.connection_invalidated:
            return DATABASE
        if isinstance(link, sa_errors.TimeoutError):  # no pooled connection came free in time
            return DATABASE
        if isinstance(link, _NETWORK_FAILURES):
            return UNKNOWN
    return None


def refused_before_sending(exc: BaseException) -> bool:
    """The failure happened before a statement reached the server, so none of it was executed."""
    for link in _chain(exc):
        if isinstance(link, _REFUSED):
            return True
        if isinstance(link, asyncpg.InterfaceError) and any(text in str(link) for text in _CLOSED):
            return True
    return False


def as_unavailable(exc: BaseException, dependency: str) -> ServiceUnavailable | None:
    """The ServiceUnavailable for `exc` when it is an outage (of whichever server it names), else None."""
    if isinstance(exc, ServiceUnavailable):
        return exc
    down = dependency_down(exc)
    if down is None:
        return None
    return ServiceUnavailable(dependency if down == UNKNOWN else down, RETRY_AFTER_SECONDS)


def raise_if_outage(exc: object, dependency: str) -> None:
    """For an `__aexit__`: raise ServiceUnavailable from `exc` when it is an outage not translated yet."""
    if isinstance(exc, Exception) and (unavailable := as_unavailable(exc, dependency)) not in (None, exc):
        raise unavailable from exc


@contextlib.contextmanager
def translating(dependency: str, *, sends_write: bool = False) -> Iterator[None]:
    """Inside: an outage of `dependency` (or of another server it reached) becomes ServiceUnavailable.

    `sends_write`: the block sends a write (a start, a COMMIT) that may have taken effect when the
    connection broke after sending it; such an outage becomes OutcomeUnknown.
    """
    try:
        yield
    except DomainError:
        raise
    except Exception as exc:
        unavailable = as_unavailable(exc, dependency)
        if unavailable is None:
            raise
        if sends_write and not refused_before_sending(exc):
            unavailable = OutcomeUnknown(unavailable.dependency, unavailable.retry_after_seconds)
        log_outage(unavailable, exc)
        raise unavailable from exc


def log_outage(unavailable: ServiceUnavailable, exc: BaseException) -> None:
    """One warning line for a known server's outage; with the traceback when only a bare network
    error said so (which server, and whether it is a bug, the traceback tells)."""
    known = dependency_down(exc) not in (UNKNOWN, None)
    log.warning(
        "%s unavailable: %s: %s",
        unavailable.dependency,
        type(exc).__name__,
        exc,
        exc_info=None if known else (type(exc), exc, exc.__traceback__),
    )
