"""Access revocations across processes: announced on the broadcast, applied to each process's gate.

`announce(user_id, api_key=...)` applies the revocation to this process's gate at once, then publishes
it on the `genhub:access:revoked` channel (Redis pub/sub; in-process with `memory://`). Every
process listens to that channel for its whole life and applies what arrives
(`AccessGate.revoked`: forget the user's state, check the user's open connections). An
announcement may name a revoked API key (`{"user": ..., "key": ...}`): the key is forgotten by
each process's ApiKeyGate first, so the checks that follow read it again and close the
connections it authenticated. Messages without a key (older processes') still decode.

Announcements can be missed; what covers each case:
- this process's pub/sub connection is down (or was down since the last look): the gate is
  told to `distrust` and reads the database on every check until the connection is back,
  then starts afresh and checks every open connection (`trust`);
- this process's queue of announcements overflowed: the same fresh start;
- the publisher could not reach Redis (others still connected): the publish is retried in
  the background a few times with backoff (`publish_retries`, at most `MAX_PENDING_RETRIES`
  announcements waiting); past that, each process re-reads a user's state after the gate's
  TTL, and checks every open connection at that interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any, Final

from domain.use_cases.access_gate import AccessGate
from domain.use_cases.api_key_gate import ApiKeyGate
from infrastructure.pubsub.backoff import backoff_delay

log = logging.getLogger("genhub.access")

CHANNEL: Final = "genhub:access:revoked"
#: Announcements whose publish is being retried at once, at most (beyond: left to the gates' TTL).
MAX_PENDING_RETRIES: Final = 1000


def encode(user_id: uuid.UUID, api_key: uuid.UUID | None = None) -> str:
    body = {"user": str(user_id)}
    if api_key is not None:
        body["key"] = str(api_key)
    return json.dumps(body)


def decode(message: str) -> tuple[uuid.UUID, uuid.UUID | None]:
    """The announced user and revoked API key, if any (messages of older versions carry no key);
    ValueError for anything else."""
    try:
        body = json.loads(message)
    except json.JSONDecodeError as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("user"), str):
        raise ValueError("no user")
    key = body.get("key")
    if key is not None and not isinstance(key, str):
        raise ValueError("a key that is no string")
    return uuid.UUID(body["user"]), uuid.UUID(key) if key is not None else None


class BroadcastRevocations:
    """The AccessRevocations port on the process's broadcast, and the listener that feeds the gate."""

    def __init__(
        self,
        broadcast: Any,
        gate: AccessGate,
        *,
        keys: ApiKeyGate | None = None,
        health_interval: float = 0.25,
        publish_timeout: float = 2.0,
        publish_retries: int = 4,
        retry_base_seconds: float = 0.25,
    ) -> None:
        self._broadcast = broadcast
        self._gate = gate
        self._keys = keys
        self._health_interval = health_interval
        self._publish_timeout = publish_timeout
        self._publish_retries = publish_retries
        self._retry_base = retry_base_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._retrying: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()
        #: Announcements that could not be published at once (Redis unreachable).
        self.publish_failures = 0
        #: Of those, published by a later retry / never published.
        self.publish_retried = 0
        self.publish_abandoned = 0
        #: Announcements received from the channel (this process's own included).
        self.received = 0

    async def announce(self, user_id: uuid.UUID, *, api_key: uuid.UUID | None = None) -> None:
        await self._apply(user_id, api_key)
        message = encode(user_id, api_key)
        if await self._publish(message):
            return
        self.publish_failures += 1
        if len(self._retrying) >= MAX_PENDING_RETRIES:
            self.publish_abandoned += 1
            log.warning(
                "access revocation of %s not published; other processes apply it within the gate's TTL", user_id
            )
            return
        task = asyncio.create_task(self._retry(user_id, message), name="access-revocation-retry")
        self._retrying.add(task)
        task.add_done_callback(self._retrying.discard)

    async def _publish(self, message: str) -> bool:
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._broadcast.publish(CHANNEL, message)
        except Exception as exc:
            log.warning("access revocation not published (%s: %s)", type(exc).__name__, exc)
            return False
        return True

    async def _retry(self, user_id: uuid.UUID, message: str) -> None:
        """Publish again a few times with backoff; then give up (the gates' TTL covers it)."""
        for attempt in range(1, self._publish_retries + 1):
            await asyncio.sleep(backoff_delay(attempt, base=self._retry_base, cap=self._retry_base * 16))
            if await self._publish(message):
                self.publish_retried += 1
                return
        self.publish_abandoned += 1
        log.warning(
            "access revocation of %s not published after %d retries; other processes apply it within the gate's TTL",
            user_id,
            self._publish_retries,
        )

    async def _apply(self, user_id: uuid.UUID, api_key: uuid.UUID | None) -> None:
        """Forget the key (if any) and the user's state, then check the user's open connections."""
        if api_key is not None and self._keys is not None:
            self._keys.forget(api_key)
        await self._gate.revoked(user_id)

    async def start(self) -> None:
        """Listen until `stop`; returns once subscribed (announcements from now on are received)."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="access-revocations"),
            asyncio.create_task(self._watch_health(), name="access-revocations-health"),
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._subscribed.wait()

    async def stop(self) -> None:
        tasks, self._tasks = [*self._tasks, *self._retrying], []
        self._retrying = set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with self._broadcast.subscribe(CHANNEL) as subscriber:
                    self._subscribed.set()
                    if failures:
                        await self._gate.trust()  # heard again: whatever was missed meanwhile is re-read
                    failures = 0
                    async for event in subscriber:
                        self.received += 1
                        if subscriber.lagged:  # announcements were dropped: some user's state may be stale
                            subscriber.lagged = False
                            self._gate.distrust()
                            await self._gate.trust()
                        try:
                            user_id, api_key = decode(event.message)
                        except ValueError as exc:
                            log.warning("ignoring a malformed access revocation (%s)", exc)
                            continue
                        await self._apply(user_id, api_key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("access revocations: the subscription failed; subscribing again")
            # The subscription ended (broadcast closed or failed): nothing is heard until it is back.
            self._gate.distrust()
            failures += 1
            await asyncio.sleep(backoff_delay(failures, base=0.1, cap=5.0))

    async def _watch_health(self) -> None:
        """Distrust the gate while the pub/sub connection is down (or was lost since the last look);
        check every open connection once per gate TTL."""
        backend = getattr(self._broadcast, "backend", None)
        losses = getattr(backend, "connection_losses", 0)
        since_recheck = 0.0
        while True:
            await asyncio.sleep(self._health_interval)
            connected = bool(getattr(backend, "is_connected", True))
            now_losses = getattr(backend, "connection_losses", 0)
            if not connected or now_losses != losses:
                losses = now_losses
                if self._gate.trusted:
                    log.warning("access revocations may be missed: checking every token against the database")
                self._gate.distrust()
                if not connected:
                    continue
            if not self._gate.trusted:
                log.info("access revocations are received again: remembering access states again")
                await self._gate.trust()
                since_recheck = 0.0
                continue
            since_recheck += self._health_interval
            if since_recheck >= self._gate.ttl_seconds:
                since_recheck = 0.0
                await self._gate.recheck_all()
