"""In-flight slots per provider (the `ProviderSlots` port): on Redis for every worker, in memory for one process.

On Redis each provider's slots are one sorted set (`<TASK_QUEUE_NAME>:slots:{provider}`): a member
per holder (a generation id), scored with the end of its lease in milliseconds of Redis's own
clock. Taking a slot is one Lua script (drop the expired, renew a holder's own slot, else add it
when fewer than the limit hold one), so concurrent submitters on any number of hosts never
exceed the limit. A holder whose worker died frees its slot when its lease ends; the sweep
(domain/use_cases/provider_slots.py) renews the slots of what runs and drops the others sooner.

There is no in-process fallback while Redis cannot be reached: taking a slot fails (the caller
skips the route and retries later), since counting per process would let every worker fill
the provider's whole limit.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

# KEYS[1] the provider's set. ARGV: holder, limit, lease (ms). 1: held.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
"""

# KEYS[1] the provider's set. Returns the live holders with their lease ends.
_HOLDERS_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
"""

# KEYS[1] the provider's set. ARGV: lease (ms), how many running, the running holders, then pairs of
# (stale holder, the lease end read): renew every running one, drop each stale one still at that end.
_RECONCILE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local running = tonumber(ARGV[2])
for i = 3, 2 + running do
  redis.call('ZADD', KEYS[1], now + lease, ARGV[i])
end
if running > 0 then
  redis.call('PEXPIRE', KEYS[1], lease)
end
local dropped = 0
for i = 3 + running, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    dropped = dropped + 1
  end
end
return dropped
"""


def _ms(lease: timedelta) -> int:
    return max(1, int(lease.total_seconds() * 1000))


class RedisProviderSlots:
    def __init__(self, redis: Redis, *, prefix: str = "slots:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE_LUA)
        self._holders = redis.register_script(_HOLDERS_LUA)
        self._reconcile = redis.register_script(_RECONCILE_LUA)

    def _key(self, provider: str) -> str:
        return f"{self._prefix}{provider}"

    async def acquire(self, provider: str, holder: uuid.UUID, *, limit: int, lease: timedelta) -> bool:
        # redis-py's Script loads itself again when Redis forgot it (NOSCRIPT after a restart).
        taken = await self._acquire(keys=[self._key(provider)], args=[str(holder), limit, _ms(lease)])
        return int(taken) == 1

    async def release(self, provider: str, holder: uuid.UUID) -> None:
        await self._redis.zrem(self._key(provider), str(holder))

    async def holders(self, provider: str) -> dict[uuid.UUID, float]:
        flat: list[Any] = await self._holders(keys=[self._key(provider)], args=[])
        found: dict[uuid.UUID, float] = {}
        for member, score in zip(flat[::2], flat[1::2], strict=True):
            text = member.decode() if isinstance(member, bytes) else str(member)
            try:
                found[uuid.UUID(text)] = float(score)
            except ValueError:
                continue  # not ours: left to its lease
        return found

    async def reconcile(
        self, provider: str, *, running: Sequence[uuid.UUID], stale: Mapping[uuid.UUID, float], lease: timedelta
    ) -> None:
        args: list[Any] = [_ms(lease), len(running), *(str(h) for h in running)]
        for holder, version in stale.items():
            args += [str(holder), int(version)]  # lease ends are whole milliseconds
        await self._reconcile(keys=[self._key(provider)], args=args)


class MemoryProviderSlots:
    """The same rules for one process (the embedded default: one process runs every submit)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._slots: dict[str, dict[uuid.UUID, float]] = {}
        self._lock = threading.Lock()

    def _live(self, provider: str, now: float) -> dict[uuid.UUID, float]:
        slots = self._slots.setdefault(provider, {})
        for holder in [h for h, end in slots.items() if end <= now]:
            del slots[holder]
        return slots

    async def acquire(self, provider: str, holder: uuid.UUID, *, limit: int, lease: timedelta) -> bool:
        now = self._clock()
        with self._lock:
            slots = self._live(provider, now)
            if holder not in slots and len(slots) >= limit:
                return False
            slots[holder] = now + lease.total_seconds()
            return True

    async def release(self, provider: str, holder: uuid.UUID) -> None:
        with self._lock:
            self._slots.get(provider, {}).pop(holder, None)

    async def holders(self, provider: str) -> dict[uuid.UUID, float]:
        with self._lock:
            return dict(self._live(provider, self._clock()))

    async def reconcile(
        self, provider: str, *, running: Sequence[uuid.UUID], stale: Mapping[uuid.UUID, float], lease: timedelta
    ) -> None:
        now = self._clock()
        with self._lock:
            slots = self._live(provider, now)
            for holder in running:
                slots[holder] = now + lease.total_seconds()
            for holder, version in stale.items():
                if slots.get(holder) == version:
                    del slots[holder]
