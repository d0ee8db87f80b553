"""Connection-level failures of PostgreSQL and Redis, told apart from every other error and turned
into `domain.errors.ServiceUnavailable` by the adapters (docs/deploy.md, "When Redis / PostgreSQL / S3
is down").

An outage is the server being unreachable, restarting, refusing connections or out of them, or
a connection dropped mid-statement. A constraint violation, a syntax error or a bad value is
not: those keep their own meaning (and stay unexpected errors when nobody expects them).
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator

import asyncpg
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

from domain.errors import DomainError, ServiceUnavailable

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
UNKNOWN = "unknown"
#: How far the chain of causes is followed (SQLAlchemy wraps the driver's error twice).
_CHAIN_DEPTH = 8


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    for _ in range(_CHAIN_DEPTH):
        if current is None or id(current) in seen:
            return
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError holds the driver's error here
        current = (
            orig
            if isinstance(orig, BaseException) and id(orig) not in seen
            else current.__cause__ or current.__context__
        )


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
def translating(dependency: str) -> Iterator[None]:
    """Inside: an outage of `dependency` (or of another server it reached) becomes ServiceUnavailable."""
    try:
        yield
    except DomainError:
        raise
    except Exception as exc:
        unavailable = as_unavailable(exc, dependency)
        if unavailable is None:
            raise
        log.warning("%s unavailable: %s: %s", unavailable.dependency, type(exc).__name__, exc)
        raise unavailable from exc
