"""Automatic pipelining: the Redis commands issued during one event-loop iteration go out in one write.

Under load many requests are in flight at once, and each sends a few short commands
(the rate-limit script, the queue XADD, the event PUBLISHes). Sent one by one through
redis-py, every command costs a pool checkout, a write, a read coroutine with its own
timer, a release and a wake-up; here they share one connection of their own:

- `submit` queues a command and returns a future; at the end of the loop iteration every
  queued command is packed (hiredis) and written at once, without waiting for earlier
  replies (pipelining on the wire: no task, no checkout, no round trip per batch);
- replies are parsed (hiredis) as bytes arrive and handed to the futures in order, from
  the protocol's callback: no reader coroutine either.

One connection carries everything, so all commands keep the order they were issued in,
across loop iterations too. Replies are Redis's own values (bytes, ints, lists): no
redis-py response callbacks (``SET`` answers ``b"OK"``, not ``True``). A command's error
reply fails only its caller, with redis-py's exception class (``NoScriptError``, ...). A
lost connection, or a server that stops answering for ``reply_timeout`` seconds, fails
every command waiting on it with redis-py's ``ConnectionError``/``TimeoutError``; the next
command opens a new connection. A connection left unused for ``idle_reconnect`` seconds is
replaced before its next use, so a link dropped silently while idle (a NAT or firewall
timeout, a failover) costs a reconnect rather than a reply timeout. Connection settings
(host and port or unix socket, TLS, user, password, database) are those of the given
client's pool.

Blocking commands (BLPOP, XREAD BLOCK, SUBSCRIBE) must not go through here: they would
hold up every command behind them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import AuthenticationError, NoPermissionError, NoScriptError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Error replies whose first word names a more precise redis-py exception.
_ERRORS: dict[str, type[Exception]] = {
    "NOSCRIPT": NoScriptError,
    "READONLY": ReadOnlyError,
    "NOPERM": NoPermissionError,
    "WRONGPASS": AuthenticationError,
    "NOAUTH": AuthenticationError,
}


def _error(reply: ResponseError) -> Exception:
    message = str(reply)
    kind = _ERRORS.get(message.split(" ", 1)[0])
    return kind(message) if kind is not None else reply


def ignore_outcomes(futures: list[asyncio.Future[Any]]) -> None:
    """Mark the outcomes of these futures as seen, now or when they settle (a caller that stopped
    waiting at the first failure), so asyncio does not report their errors as never retrieved."""
    for future in futures:
        if future.done():
            _seen(future)
        else:
            future.add_done_callback(_seen)


def _seen(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _Link(asyncio.Protocol):
    """One connection: writes packed commands, hands each parsed reply to the oldest waiting future."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reply_timeout: float) -> None:
        self.loop = loop
        self._reply_timeout = reply_timeout
        self._parser = hiredis.Reader(replyError=ResponseError)
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._replies = 0
        self._watchdog: asyncio.TimerHandle | None = None
        self._lost: Exception | None = None
        self.closed = False
        self.last_active = loop.time()  # last write or reply

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        self._parser.feed(data)
        while (reply := self._parser.gets()) is not False:
            self._replies += 1
            if not self._waiting:  # a reply nobody asked for: the stream is out of step
                self._fail(RedisConnectionError("Redis sent a reply no command was waiting for"))
                return
            future = self._waiting.popleft()
            if future.done():  # its caller gave up (cancelled); the command ran anyway
                continue
            if isinstance(reply, ResponseError):
                future.set_exception(_error(reply))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        error = self._lost or RedisConnectionError(f"Redis connection lost: {exc or 'closed by the server'}")
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    # ------------------------------------------------------------ ours

    def send(self, commands: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        assert self._transport is not None
        try:
            self._transport.write(b"".join([hiredis.pack_command(args) for args, _ in commands]))
        except Exception as exc:  # an argument of a type Redis cannot take: fail just this batch
            for _, future in commands:
                if not future.done():
                    future.set_exception(exc)
            return
        self._waiting.extend(future for _, future in commands)
        self.last_active = self.loop.time()
        if self._watchdog is None:
            self._watchdog = self.loop.call_later(self._reply_timeout, self._check, self._replies)

    def _check(self, replies_then: int) -> None:
        """No reply at all for `reply_timeout` while commands wait: the server is gone, start over."""
        self._watchdog = None
        if not self._waiting:
            return
        if self._replies == replies_then:
            self._fail(RedisTimeoutError(f"no reply from Redis within {self._reply_timeout}s"))
            return
        self._watchdog = self.loop.call_later(self._reply_timeout, self._check, self._replies)

    def _fail(self, error: Exception) -> None:
        self._lost = error
        self.closed = True
        if self._transport is not None:
            self._transport.abort()  # connection_lost fails the waiting futures with `error`

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def stale(self, idle_limit: float) -> bool:
        """Unused for `idle_limit` seconds: a firewall or a failover may have dropped it silently."""
        return not self._waiting and self.loop.time() - self.last_active > idle_limit

    def waiting(self) -> list[asyncio.Future[Any]]:
        """The futures of the commands sent and not answered yet."""
        return list(self._waiting)


class AutoPipeline:
    def __init__(
        self, redis: Redis, *, reply_timeout: float = 5.0, connect_timeout: float = 5.0, idle_reconnect: float = 30.0
    ) -> None:
        self._redis = redis
        self._reply_timeout = reply_timeout
        self._idle_reconnect = idle_reconnect
        self._connect_timeout = connect_timeout
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._link: _Link | None = None
        self._connecting: asyncio.Task[None] | None = None
        self.writes = 0  # batches of commands written (each carries every command of one loop iteration)

    async def call(self, *args: Any) -> Any:
        """Run one command in the next write; its reply or its error."""
        return await self.submit(*args)

    def submit(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command for the next write; the future gets its reply. Submit several, then await them."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        link = self._link
        if (
            link is None
            or link.closed
            or link.loop is not asyncio.get_running_loop()
            or link.stale(self._idle_reconnect)
        ):
            if self._connecting is None:
                self._connecting = asyncio.get_running_loop().create_task(self._connect())
            return  # sent once connected
        pending, self._pending = self._pending, []
        if pending:
            self.writes += 1
            link.send(pending)

    async def _connect(self) -> None:
        old, self._link = self._link, None
        if old is not None and not old.closed and old.loop is asyncio.get_running_loop():
            old.close()
        try:
            self._link = await asyncio.wait_for(self._open(), self._connect_timeout)
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, RedisConnectionError)
                else RedisConnectionError(f"cannot connect to Redis: {exc!r}")
            )
            pending, self._pending = self._pending, []
            for _, future in pending:
                if not future.done():
                    future.set_exception(error)
        finally:
            self._connecting = None
        if self._pending and self._link is not None:
            self._flush()

    async def _open(self) -> _Link:
        """A connected link, authenticated and on the right database (settings of the client's pool)."""
        loop = asyncio.get_running_loop()
        settings = self._redis.connection_pool.make_connection()  # type: ignore[no-untyped-call]  # only its settings

        def protocol() -> _Link:
            return _Link(loop, self._reply_timeout)

        link: _Link
        if isinstance(settings, UnixDomainSocketConnection):
            _, link = await loop.create_unix_connection(protocol, settings.path)
        else:
            tls = settings.ssl_context.get() if isinstance(settings, SSLConnection) else None
            _, link = await loop.create_connection(protocol, settings.host, settings.port, ssl=tls)
        try:
            handshake: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
            username, password = settings.username, settings.password
            if settings.credential_provider is not None:
                credentials = await settings.credential_provider.get_credentials_async()
                username, password = (None, credentials[0]) if len(credentials) == 1 else credentials
            if password:
                auth = ("AUTH", username, password) if username else ("AUTH", password)
                handshake.append((auth, loop.create_future()))
            if settings.db:
                handshake.append((("SELECT", settings.db), loop.create_future()))
            if handshake:
                link.send(handshake)
                for _, future in handshake:
                    await future
        except BaseException:
            link.close()
            raise
        return link

    async def drain(self) -> None:
        """Wait until every command issued so far has its reply (or its error)."""
        await asyncio.sleep(0)  # lets a scheduled write go out
        while True:
            due: list[asyncio.Future[Any]] = [future for _, future in self._pending]
            if self._connecting is not None:
                due.append(self._connecting)
            if self._link is not None:
                due += self._link.waiting()
            if not due:
                return
            await asyncio.wait(due)

    async def aclose(self) -> None:
        """Wait for the replies still due (at most `reply_timeout`), then close the connection."""
        with contextlib.suppress(TimeoutError):  # (asyncio's, the builtin)
            await asyncio.wait_for(self.drain(), self._reply_timeout)
        link, self._link = self._link, None
        if link is not None:
            link.close()
