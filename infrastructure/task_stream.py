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
  which worker may finish the job (domain/use_cases/leases.py);
- a consumer reads (and reclaims) at most as many messages as it has free slots
  (`capacity` less the messages it holds), so a busy worker leaves the rest to idle ones;
- a reclaimed message already delivered `max_deliveries` times (each worker that took it
  died or froze) is acknowledged, copied to the dead-letter stream (`<stream>:dead`,
  trimmed to `dead_letter_maxlen`) and logged as an error instead of being run again;
- an acknowledged message is deleted from the stream at once (XACK and XDEL in one
  transaction), so what a finished task carried does not stay readable in Redis.
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
        self,
        url: str,
        *,
        renew_seconds: float | None = None,
        claim_every: float = 1.0,
        capacity: int = 100,
        max_deliveries: int = 5,
        dead_letter_maxlen: int = 10_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(url, **kwargs)
        if capacity < 1 or max_deliveries < 1:
            raise ValueError("capacity and max_deliveries must be at least 1")
        self.capacity = capacity
        self.max_deliveries = max_deliveries
        self.dead_letter_maxlen = dead_letter_maxlen
        self._freed = asyncio.Event()
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

    @property
    def free_slots(self) -> int:
        """How many more messages this consumer may hold (read, and not yet acknowledged)."""
        return self.capacity - len(self.held)

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
                self._freed.clear()
                if self.free_slots <= 0:
                    # Every slot is busy: wait for one to free up (or the next reclaim round)
                    # rather than read messages that would sit here while idle workers wait.
                    await self._slot_freed(max(0.0, next_claim - loop.time()))
                    continue
                block_ms = max(1, min(self.block, round((next_claim - loop.time()) * 1000)))
                fetched: Any = await redis.xreadgroup(
                    self.consumer_group_name,
                    self.consumer_name,
                    {self.queue_name: ">", **self.additional_streams},  # type: ignore[dict-item]
                    block=block_ms,
                    noack=False,
                    count=min(self.count or self.free_slots, self.free_slots),
                )
                batch = [
                    (_text(stream), _text(msg_id), fields)
                    for stream, messages in fetched or []
                    for msg_id, fields in messages
                ]
                self.held.update((stream, msg_id) for stream, msg_id, _fields in batch)
                for stream, msg_id, fields in batch:
                    yield self._message(stream, msg_id, fields)

    async def _slot_freed(self, seconds: float) -> None:
        """Until a held message is acknowledged or lost, or `seconds` pass.

        `asyncio.wait` rather than a timeout context: a cancellation that arrives as the event
        is set must end the listener, not be taken for the timeout.
        """
        freed = asyncio.ensure_future(self._freed.wait())
        try:
            await asyncio.wait({freed}, timeout=seconds)
        finally:
            freed.cancel()

    async def _reclaim(self, redis: Redis, stream: str) -> list[AckableMessage]:
        """Messages of dead consumers (idle past the lease), now this consumer's, as many as it has free slots."""
        if self.free_slots <= 0:
            return []
        answer = await redis.xautoclaim(
            stream,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            start_id=self._cursors.get(stream, "0-0"),
            count=min(self.unacknowledged_batch_size, self.free_slots),
        )
        self._cursors[stream] = _text(answer[0])
        claimed = [(_text(msg_id), fields) for msg_id, fields in answer[1] if msg_id is not None and fields]
        if not claimed:
            return []
        deliveries = await self._deliveries(redis, stream, [msg_id for msg_id, _fields in claimed])
        poisoned = [(msg_id, fields) for msg_id, fields in claimed if deliveries.get(msg_id, 0) > self.max_deliveries]
        for msg_id, fields in poisoned:
            await self._dead_letter(redis, stream, msg_id, fields, deliveries[msg_id])
        claimed = [(msg_id, fields) for msg_id, fields in claimed if deliveries.get(msg_id, 0) <= self.max_deliveries]
        if claimed:
            log.warning("reclaimed %d task message(s) of a worker that stopped renewing them", len(claimed))
        self.held.update((stream, msg_id) for msg_id, _fields in claimed)
        return [self._message(stream, msg_id, fields) for msg_id, fields in claimed]

    async def _deliveries(self, redis: Redis, stream: str, ids: list[str]) -> dict[str, int]:
        """How many times each message was delivered (XPENDING's counter, which XAUTOCLAIM raises)."""
        async with redis.pipeline(transaction=False) as pipe:
            for msg_id in ids:
                pipe.xpending_range(stream, self.consumer_group_name, min=msg_id, max=msg_id, count=1)
            answers: list[Any] = await pipe.execute()
        return {_text(row["message_id"]): int(row["times_delivered"]) for rows in answers for row in rows}

    async def _dead_letter(
        self, redis: Redis, stream: str, msg_id: str, fields: dict[Any, Any], deliveries: int
    ) -> None:
        """Out of the queue for good: copied to the dead-letter stream and acknowledged, in one transaction."""
        dead = f"{stream}:dead"
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                dead,
                {**fields, b"stream": stream, b"message_id": msg_id, b"deliveries": deliveries},
                maxlen=self.dead_letter_maxlen,
                approximate=True,
            )
            pipe.xack(stream, self.consumer_group_name, msg_id)
            await pipe.execute()
        log.error(
            "task message %s of %s was delivered %d times without being acknowledged (every worker that took it "
            "died or froze); moved to %s",
            msg_id,
            stream,
            deliveries,
            dead,
        )

    def _message(self, stream: str, msg_id: str, fields: dict[Any, Any]) -> AckableMessage:
        data = fields.get(b"data", fields.get("data", b""))
        return AckableMessage(data=data, ack=self._ack_for((stream, msg_id)))

    def _ack_for(self, held: Held) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            if held not in self.held:
                return  # taken over by another consumer: acknowledging is the new owner's
            self.held.discard(held)
            self._freed.set()
            # Deleted as well as acknowledged: a finished task's arguments (an e-mail's body
            # with a reset link, say) do not stay in Redis until the stream is trimmed.
            async with Redis(connection_pool=self.connection_pool) as redis, redis.pipeline(transaction=True) as pipe:
                pipe.xack(held[0], self.consumer_group_name, held[1])
                pipe.xdel(held[0], held[1])
                await pipe.execute()

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
            self._freed.set()
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
