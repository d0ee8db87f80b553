"""The task stream's consumer side: each message a worker holds is leased, and renewed while it lives.

taskiq-redis's RedisStreamBroker redelivers a message left unacknowledged for `idle_timeout`
(XAUTOCLAIM), so a short timeout is what moves a dead worker's tasks on quickly, and the
same short timeout would hand a slow task of a live worker to a second one (taskiq-redis
#101). It also looks for such messages only after a read that returned new ones, behind
a lock a killed worker can leave held (#131). Here instead:

- every message this consumer has read and not yet acknowledged (running, prefetched, or
  still in the batch it read) is renewed every `renew_seconds`: a script claims it back
  to this consumer (XCLAIM ... JUSTID resets its idle time) only while this consumer
  still owns it, so a renewal never takes a message from the worker that reclaimed it;
- XAUTOCLAIM of messages idle for longer than the lease runs every `claim_every` seconds,
  whether or not new messages arrived, without a lock (each call is atomic: a message is
  claimed by one consumer, and its idle time starts again);
- a message found taken over is dropped from renewal and not acknowledged by this consumer
  (the new owner acknowledges it); the generation's own lease in the database decides
  which worker may finish the job (domain/use_cases/leases.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

log = logging.getLogger("genhub.tasks")

#: KEYS[1] the stream; ARGV: group, consumer, message ids. Claims back (resetting the idle
#: time) each id this consumer still owns; returns the ids it no longer owns.
RENEW_SCRIPT = """
local group, me = ARGV[1], ARGV[2]
local lost = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local entry = redis.call('XPENDING', KEYS[1], group, id, id, 1)
  if entry[1] ~= nil and entry[1][2] == me then
    redis.call('XCLAIM', KEYS[1], group, me, 0, id, 'JUSTID')
  else
    lost[#lost + 1] = id
  end
end
return lost
"""
RENEW_BATCH = 500
Held = tuple[str, str]  # (stream, message id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class LeasedStreamBroker(RedisStreamBroker):
    """RedisStreamBroker whose consumer renews the messages it holds and reclaims the idle ones on a timer."""

    def __init__(
        self, url: str, *, renew_seconds: float | None = None, claim_every: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(url, **kwargs)
        lease_seconds = self.idle_timeout / 1000
        renew_seconds = lease_seconds / 5 if renew_seconds is None else renew_seconds
        if not 0 < renew_seconds * 2 <= lease_seconds:
            raise ValueError("the renewal interval must be well under the message lease (idle_timeout)")
        self.renew_seconds = renew_seconds
        self.claim_every = claim_every
        self.held: set[Held] = set()
        self._cursors: dict[str, str] = {}
        self._renewer: asyncio.Task[None] | None = None

    @property
    def streams(self) -> list[str]:
        return [self.queue_name, *self.additional_streams]

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        loop = asyncio.get_running_loop()
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_forever(), name="genhub-task-lease-renewal")
        next_claim = loop.time()
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                if loop.time() >= next_claim:
                    next_claim = loop.time() + self.claim_every
                    for stream in self.streams:
                        for message in await self._reclaim(redis, stream):
                            yield message
                block_ms = max(1, min(self.block, round((next_claim - loop.time()) * 1000)))
                fetched: Any = await redis.xreadgroup(
                    self.consumer_group_name,
                    self.consumer_name,
                    {self.queue_name: ">", **self.additional_streams},  # type: ignore[dict-item]
                    block=block_ms,
                    noack=False,
                    count=self.count,
                )
                batch = [
                    (_text(stream), _text(msg_id), fields)
                    for stream, messages in fetched or []
                    for msg_id, fields in messages
                ]
                self.held.update((stream, msg_id) for stream, msg_id, _fields in batch)
                for stream, msg_id, fields in batch:
                    yield self._message(stream, msg_id, fields)

    async def _reclaim(self, redis: Redis, stream: str) -> list[AckableMessage]:
        """Messages of dead consumers (idle past the lease), now this consumer's."""
        answer = await redis.xautoclaim(
            stream,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            start_id=self._cursors.get(stream, "0-0"),
            count=self.unacknowledged_batch_size,
        )
        self._cursors[stream] = _text(answer[0])
        claimed = [(_text(msg_id), fields) for msg_id, fields in answer[1] if msg_id is not None and fields]
        if claimed:
            log.warning("reclaimed %d task message(s) of a worker that stopped renewing them", len(claimed))
        self.held.update((stream, msg_id) for msg_id, _fields in claimed)
        return [self._message(stream, msg_id, fields) for msg_id, fields in claimed]

    def _message(self, stream: str, msg_id: str, fields: dict[Any, Any]) -> AckableMessage:
        data = fields.get(b"data", fields.get("data", b""))
        return AckableMessage(data=data, ack=self._ack_for((stream, msg_id)))

    def _ack_for(self, held: Held) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            if held not in self.held:
                return  # taken over by another consumer: acknowledging is the new owner's
            self.held.discard(held)
            async with Redis(connection_pool=self.connection_pool) as redis:
                await redis.xack(held[0], self.consumer_group_name, held[1])

        return ack

    async def renew(self) -> list[Held]:
        """Renew every held message once; returns (and stops renewing) those taken over meanwhile."""
        by_stream: dict[str, list[str]] = {}
        for stream, msg_id in list(self.held):
            by_stream.setdefault(stream, []).append(msg_id)
        lost: list[Held] = []
        async with Redis(connection_pool=self.connection_pool) as redis:
            for stream, ids in by_stream.items():
                for start in range(0, len(ids), RENEW_BATCH):
                    chunk = ids[start : start + RENEW_BATCH]
                    try:
                        gone = await redis.eval(
                            RENEW_SCRIPT, 1, stream, self.consumer_group_name, self.consumer_name, *chunk
                        )
                    except ResponseError as exc:
                        if "NOGROUP" not in str(exc):
                            raise
                        gone = chunk  # the stream or its group is gone (a Redis restarted empty)
                    lost += [(stream, _text(msg_id)) for msg_id in gone]
        lost = [held for held in lost if held in self.held]  # acknowledged meanwhile is not lost
        for held in lost:
            self.held.discard(held)
            log.warning("task message %s was taken over by another worker; it is theirs now", held[1])
        return lost

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.renew_seconds)
            if not self.held:
                continue
            try:
                await self.renew()
            except Exception as exc:  # Redis is away: try again at the next beat
                log.warning("could not renew the task messages' leases: %r", exc)

    async def shutdown(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await super().shutdown()
