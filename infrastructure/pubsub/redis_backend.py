"""A broadcaster backend on ``redis.asyncio`` that survives Redis restarts.

broadcaster's own ``RedisBackend`` never re-subscribes after a connection loss
(its subscribers hang silently, encode/broadcaster#144). This one:

- keeps the set of active channels (what the process *wants* to be subscribed to);
- ``subscribe``/``unsubscribe`` update that set and send SUBSCRIBE/UNSUBSCRIBE when
  connected; while disconnected they only update the set, and the next connection
  subscribes exactly the channels active at that time. Unsubscribing really sends
  UNSUBSCRIBE, so Redis keeps no subscription for a channel nobody listens to;
- ``next_published`` never raises on a connection loss: it drops the broken
  connection, reconnects with capped, jittered exponential backoff, re-subscribes
  every active channel and logs each loss and each reconnect. An idle connection is
  PINGed, so a frozen server or a half-open TCP link is noticed too;
- ``connect`` fails fast (:class:`PubSubUnavailable`) so a wrong ``REDIS_URL`` shows at
  startup; every later loss is handled by reconnecting;
- ``publish`` is PUBLISH with a brief bounded retry (default: 3 attempts within
  2 s), raising :class:`PubSubUnavailable` when Redis stays unreachable
  (``infrastructure.pubsub.redis_publishing``).

Redis pub/sub has no persistence: messages published while this process is
disconnected (or before its re-subscription lands) are not delivered to it.

Only the reader (``next_published``) replaces the connection; ``subscribe`` and
``unsubscribe`` that hit a broken connection mark it broken, and the reader
reconnects within ``read_timeout``.

(Past 300 lines on purpose: what is left is one state machine, the subscriber connection,
its channel set and its liveness, which subscribing, reading and reconnecting all change
under one lock; the publishing side is ``redis_publishing``.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from broadcaster import BroadcastBackend, Event
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from infrastructure.pubsub.backoff import backoff_delay
from infrastructure.pubsub.redis_publishing import CONNECTION_ERRORS, PubSubUnavailable, RedisPublisher
from infrastructure.redis_pipelining import AutoPipeline

logger = logging.getLogger(__name__)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class RedisPubSubBackend(BroadcastBackend):
    """Reconnecting Redis pub/sub backend for ``broadcaster.Broadcast``.

    Parameters beyond ``url`` tune failure handling; the defaults suit production.
    ``backoff_base``/``backoff_cap``: reconnect delays (seconds). ``read_timeout``: how
    long one read waits before the reader re-checks its state. ``ping_interval``: after
    this many idle seconds the reader PINGs Redis; without any reply within
    ``ping_timeout`` the connection counts as lost (a frozen server or a half-open TCP
    connection would otherwise look like a quiet channel forever).
    ``publish_attempts``/``publish_timeout``: the brief publish retry. ``publish_pipeline``:
    an `AutoPipeline` to publish through instead of one of our own (shared with other writers).
    """

    def __init__(
        self,
        url: str,
        *,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        read_timeout: float = 1.0,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        socket_connect_timeout: float = 2.0,
        socket_timeout: float = 5.0,
        publish_attempts: int = 3,
        publish_timeout: float = 2.0,
        publish_pipeline: AutoPipeline | None = None,
    ) -> None:
        # BroadcastBackend.__init__ only raises NotImplementedError: do not call it.
        self._url = url
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._read_timeout = read_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._socket_connect_timeout = socket_connect_timeout
        self._socket_timeout = socket_timeout
        self._publisher = RedisPublisher(
            attempts=publish_attempts, timeout=publish_timeout, shared_pipeline=publish_pipeline
        )

        self._channels: set[str] = set()
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._broken = False
        self._connected_at = 0.0
        self._last_seen = 0.0
        self._ping_sent_at: float | None = None
        self._failures = 0
        self._lock = asyncio.Lock()
        self._closed = True

        #: Successful reconnects since ``connect()`` (for metrics and tests).
        self.reconnects = 0
        #: Connection losses noticed since ``connect()``.
        self.connection_losses = 0

    # ------------------------------------------------------------ introspection

    @property
    def channels(self) -> frozenset[str]:
        """The active channels (re-subscribed on every reconnect)."""
        return frozenset(self._channels)

    @property
    def is_connected(self) -> bool:
        """Whether the subscriber connection is currently believed healthy."""
        return self._pubsub is not None and not self._broken

    @property
    def client(self) -> Redis:
        """The command client (PUBLISH, PUBSUB NUMSUB, ...); only after ``connect()``."""
        if self._client is None:
            raise RuntimeError("RedisPubSubBackend is not connected")
        return self._client

    # ------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Open the clients; raises :class:`PubSubUnavailable` when Redis is unreachable.

        Failing fast here surfaces a wrong ``REDIS_URL`` at startup; later losses are
        handled by reconnecting.
        """
        self._client = Redis.from_url(
            self._url,
            # No hidden retries inside redis-py: reconnection is ours, publish retries are ours.
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self._socket_connect_timeout,
            socket_timeout=self._socket_timeout,
        )
        # PUBLISHes share the process's pipeline when given one (with the queue's XADDs, say).
        self._publisher.open(self._client)
        self._closed = False
        self.reconnects = 0
        self.connection_losses = 0
        try:
            await self._client.ping()
            self._pubsub = await self._open_pubsub()
        except CONNECTION_ERRORS as exc:
            await self.disconnect()
            raise PubSubUnavailable(f"cannot connect to Redis for pub/sub: {exc}") from exc
        self._broken = False
        self._connected_at = time.monotonic()

    async def disconnect(self) -> None:
        """Close both connections; the backend can be connected again afterwards."""
        self._closed = True
        await self._publisher.aclose()
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        self._channels.clear()
        if pubsub is not None:
            await self._close_pubsub(pubsub)
        if client is not None:
            await client.aclose()

    async def _open_pubsub(self) -> PubSub:
        """A connected PubSub subscribed to every active channel."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            async with self._lock:
                # Under the lock: a concurrent subscribe/unsubscribe either ran before
                # this snapshot or will run against the new connection.
                if self._channels:
                    await pubsub.subscribe(*sorted(self._channels))
                self._pubsub = pubsub
                self._broken = False
                self._last_seen = time.monotonic()
                self._ping_sent_at = None
        except BaseException:
            await self._close_pubsub(pubsub)
            raise
        return pubsub

    @staticmethod
    async def _close_pubsub(pubsub: PubSub) -> None:
        try:
            await pubsub.aclose()
        except Exception:  # closing a dead connection may fail in many ways
            logger.debug("error while closing a Redis pub/sub connection", exc_info=True)

    # ------------------------------------------------------------ subscriptions

    async def subscribe(self, channel: str) -> None:
        """Add a channel; never raises for a lost connection (applied on reconnect)."""
        async with self._lock:
            if channel in self._channels:
                return
            self._channels.add(channel)
            await self._send_if_connected("SUBSCRIBE", channel)

    async def unsubscribe(self, channel: str) -> None:
        """Remove a channel and UNSUBSCRIBE it; a lost connection drops it anyway."""
        async with self._lock:
            if channel not in self._channels:
                return
            self._channels.discard(channel)
            await self._send_if_connected("UNSUBSCRIBE", channel)

    async def _send_if_connected(self, command: str, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or self._broken or self._closed:
            return  # the next connection subscribes exactly self._channels
        try:
            if command == "SUBSCRIBE":
                await pubsub.subscribe(channel)
            else:
                await pubsub.unsubscribe(channel)
        except CONNECTION_ERRORS as exc:
            logger.warning("redis pub/sub %s %s failed (%s); will apply on reconnect", command, channel, exc)
            self._broken = True

    # ------------------------------------------------------------ publishing

    async def publish_many(self, messages: Sequence[tuple[str, Any]]) -> None:
        """Several PUBLISHes in one pipeline (in order), with the same retry as `publish`."""
        await self._publish_with_retry(messages, f"{len(messages)} message(s)")

    async def publish(self, channel: str, message: Any) -> None:
        """PUBLISH with a brief retry; raises :class:`PubSubUnavailable` if Redis stays down."""
        await self._publish_with_retry([(channel, message)], f"channel {channel!r}")

    async def _publish_with_retry(self, messages: Sequence[tuple[str, Any]], what: str) -> None:
        if self._closed:
            raise PubSubUnavailable("RedisPubSubBackend is not connected")
        await self._publisher.publish(messages, what)

    # ------------------------------------------------------------ receiving

    async def next_published(self) -> Event:
        """The next message on an active channel; waits (reconnecting) through outages.

        Raises ``RuntimeError`` only when the backend was disconnected on purpose.
        """
        while True:
            if self._closed:
                raise RuntimeError("RedisPubSubBackend is disconnected")
            pubsub = self._pubsub
            if pubsub is None or self._broken:
                await self._reconnect()
                continue
            if not await self._check_liveness(pubsub):
                continue
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=self._read_timeout)
            except Exception as exc:  # connection loss, or a protocol error after one
                if not self._closed:
                    self._connection_lost(exc)
                continue
            if message is None:
                continue
            self._last_seen = time.monotonic()
            self._ping_sent_at = None
            if message.get("type") == "message":
                return Event(channel=_text(message["channel"]), message=_text(message["data"]))

    async def _check_liveness(self, pubsub: PubSub) -> bool:
        """PING an idle connection; False (and marked lost) when a PING went unanswered."""
        now = time.monotonic()
        if self._ping_sent_at is not None:
            if now - self._ping_sent_at > self._ping_timeout:
                self._connection_lost(TimeoutError(f"no reply to PING within {self._ping_timeout}s"))
                return False
        elif now - self._last_seen > self._ping_interval:
            async with self._lock:
                if pubsub is not self._pubsub or self._broken:
                    return False
                try:
                    await pubsub.ping()  # the reply comes back through get_message as a "pong"
                except CONNECTION_ERRORS as exc:
                    self._connection_lost(exc)
                    return False
            self._ping_sent_at = now
        return True

    def _connection_lost(self, exc: BaseException) -> None:
        self._broken = True
        self.connection_losses += 1
        logger.warning("redis pub/sub connection lost (%s: %s); reconnecting", type(exc).__name__, exc)

    async def _reconnect(self) -> None:
        """Replace the broken connection, retrying with backoff until it works (or closed)."""
        old, self._pubsub = self._pubsub, None
        self._broken = True
        if old is not None:
            await self._close_pubsub(old)
        # A connection that lived long enough resets the backoff; a flapping one does not.
        if time.monotonic() - self._connected_at > self._backoff_cap * 2:
            self._failures = 0
        while not self._closed:
            self._failures += 1
            delay = backoff_delay(self._failures, base=self._backoff_base, cap=self._backoff_cap)
            await asyncio.sleep(delay)
            if self._closed:
                return
            try:
                await self._open_pubsub()
            except Exception as exc:  # keep trying whatever the failure: never raise from here
                logger.warning(
                    "redis pub/sub reconnect attempt %d failed (%s); next in up to %.2fs",
                    self._failures,
                    exc,
                    min(self._backoff_cap, self._backoff_base * 2**self._failures),
                )
                continue
            self._connected_at = time.monotonic()
            self.reconnects += 1
            logger.warning(
                "redis pub/sub reconnected after %d attempt(s); re-subscribed %d channel(s)",
                self._failures,
                len(self._channels),
            )
            return
