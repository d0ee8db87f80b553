"""In-flight slots per provider (the `ProviderSlots` port): on Redis for every worker, in memory for one process.

On Redis each provider's slots are one sorted set (`<TASK_QUEUE_NAME>:slots:{provider}`): a member
per holder (`<generation id>:<claim token>`, one per generation), scored with the end of its lease in
milliseconds of Redis's own clock. Taking a slot is one Lua script (drop the expired, renew a
holder's own slot or take it over from its earlier claim, else add it when fewer than the limit
hold one), so concurrent submitters on any number of hosts never exceed the limit. A submitter
frees only its own claim's member. A holder whose worker died frees its slot when its lease ends; the sweep
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

# Every script: KEYS[1] the provider's set, members "<generation id>:<claim token>" (at most one per
# generation), scored with their lease's end in ms of Redis's clock. `held` finds a generation's member;
# `expire` keeps the key as long as its longest lease (PEXPIREAT: a caller with a shorter lease, during a
# rolling change of PROVIDER_SLOT_LEASE_SECONDS, must not drop the others').
_COMMON_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function held(generation)
  local prefix = generation .. ':'
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if string.sub(member, 1, #prefix) == prefix then
      return member
    end
  end
  return nil
end
local function expire()
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(top[2])) + 1)
  end
end
"""

# ARGV: generation, member (generation:token), limit, lease (ms). 1: held (taken, renewed or taken over).
_ACQUIRE_LUA = (
    _COMMON_LUA
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local mine = held(ARGV[1])
if not mine then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    return 0
  end
elseif mine ~= ARGV[2] then
  redis.call('ZREM', KEYS[1], mine)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
expire()
return 1
"""
)

# ARGV: generation, then the member to free, or "" for whichever member the generation holds.
_RELEASE_LUA = (
    _COMMON_LUA
    + """
local mine = held(ARGV[1])
if mine and (ARGV[2] == '' or mine == ARGV[2]) then
  redis.call('ZREM', KEYS[1], mine)
end
return 1
"""
)

# Returns the live members with their lease ends.
_HOLDERS_LUA = (
    _COMMON_LUA
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
"""
)

# ARGV: lease (ms), how many to renew, those generations, how many to add, those members (generation:token),
# then pairs of (stale generation, the lease end read). Renew (XX: a member freed meanwhile stays freed), add
# for a generation holding none, drop each stale one still at the end read.
_RECONCILE_LUA = (
    _COMMON_LUA
    + """
local lease = tonumber(ARGV[1])
local i = 2
local renew = tonumber(ARGV[i])
for j = i + 1, i + renew do
  local mine = held(ARGV[j])
  if mine then
    redis.call('ZADD', KEYS[1], 'XX', now + lease, mine)
  end
end
i = i + renew + 1
local add = tonumber(ARGV[i])
for j = i + 1, i + add do
  local generation = string.match(ARGV[j], '^(.*):[^:]*$')
  if not held(generation) then
    redis.call('ZADD', KEYS[1], now + lease, ARGV[j])
  end
end
i = i + add + 1
local dropped = 0
for j = i, #ARGV, 2 do
  local mine = held(ARGV[j])
  if mine and tonumber(redis.call('ZSCORE', KEYS[1], mine)) == tonumber(ARGV[j + 1]) then
    redis.call('ZREM', KEYS[1], mine)
    dropped = dropped + 1
  end
end
expire()
return dropped
"""
)

#: The claim token of a slot the sweep (not a submit) gave to a generation that runs at the provider.
SWEEP_TOKEN = "sweep"


def _ms(lease: timedelta) -> int:
    return max(1, int(lease.total_seconds() * 1000))


def member(holder: uuid.UUID, token: uuid.UUID | str | None) -> str:
    """A slot's member: the generation and the claim that took it (at most one member per generation)."""
    return f"{holder}:{token if token is not None else '-'}"


def generation_of(text: str) -> uuid.UUID | None:
    """The generation of a member; None for one that is not ours."""
    generation, _, _ = text.partition(":")
    try:
        return uuid.UUID(generation)
    except ValueError:
        return None


class RedisProviderSlots:
    def __init__(self, redis: Redis, *, prefix: str = "slots:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE_LUA)
        self._release = redis.register_script(_RELEASE_LUA)
        self._holders = redis.register_script(_HOLDERS_LUA)
        self._reconcile = redis.register_script(_RECONCILE_LUA)

    def _key(self, provider: str) -> str:
        return f"{self._prefix}{provider}"

    async def acquire(
        self, provider: str, holder: uuid.UUID, *, limit: int, lease: timedelta, token: uuid.UUID | None = None
    ) -> bool:
        # redis-py's Script loads itself again when Redis forgot it (NOSCRIPT after a restart).
        args: list[str | int] = [str(holder), member(holder, token), limit, _ms(lease)]
        taken = await self._acquire(keys=[self._key(provider)], args=args)
        return int(taken) == 1

    async def release(self, provider: str, holder: uuid.UUID, *, token: uuid.UUID | None = None) -> None:
        only = member(holder, token) if token is not None else ""
        await self._release(keys=[self._key(provider)], args=[str(holder), only])

    async def holders(self, provider: str) -> dict[uuid.UUID, float]:
        flat: list[Any] = await self._holders(keys=[self._key(provider)], args=[])
        found: dict[uuid.UUID, float] = {}
        for raw, score in zip(flat[::2], flat[1::2], strict=True):
            generation = generation_of(raw.decode() if isinstance(raw, bytes) else str(raw))
            if generation is not None:  # not ours: left to its lease
                found[generation] = float(score)
        return found

    async def reconcile(
        self,
        provider: str,
        *,
        renew: Sequence[uuid.UUID],
        add: Sequence[uuid.UUID],
        stale: Mapping[uuid.UUID, float],
        lease: timedelta,
    ) -> None:
        args: list[Any] = [_ms(lease), len(renew), *(str(h) for h in renew)]
        args += [len(add), *(member(h, SWEEP_TOKEN) for h in add)]
        for holder, version in stale.items():
            args += [str(holder), int(version)]  # lease ends are whole milliseconds
        await self._reconcile(keys=[self._key(provider)], args=args)


class MemoryProviderSlots:
    """The same rules for one process (the embedded default: one process runs every submit)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # provider -> generation -> (its claim's member, its lease's end)
        self._slots: dict[str, dict[uuid.UUID, tuple[str, float]]] = {}
        self._lock = threading.Lock()

    def _live(self, provider: str, now: float) -> dict[uuid.UUID, tuple[str, float]]:
        slots = self._slots.setdefault(provider, {})
        for holder in [h for h, (_, end) in slots.items() if end <= now]:
            del slots[holder]
        return slots

    async def acquire(
        self, provider: str, holder: uuid.UUID, *, limit: int, lease: timedelta, token: uuid.UUID | None = None
    ) -> bool:
        now = self._clock()
        with self._lock:
            slots = self._live(provider, now)
            if holder not in slots and len(slots) >= limit:
                return False
            slots[holder] = (member(holder, token), now + lease.total_seconds())
            return True

    async def release(self, provider: str, holder: uuid.UUID, *, token: uuid.UUID | None = None) -> None:
        with self._lock:
            slots = self._slots.get(provider, {})
            held = slots.get(holder)
            if held is not None and (token is None or held[0] == member(holder, token)):
                del slots[holder]

    async def holders(self, provider: str) -> dict[uuid.UUID, float]:
        with self._lock:
            return {holder: end for holder, (_, end) in self._live(provider, self._clock()).items()}

    async def reconcile(
        self,
        provider: str,
        *,
        renew: Sequence[uuid.UUID],
        add: Sequence[uuid.UUID],
        stale: Mapping[uuid.UUID, float],
        lease: timedelta,
    ) -> None:
        now = self._clock()
        end = now + lease.total_seconds()
        with self._lock:
            slots = self._live(provider, now)
            for holder in renew:
                if holder in slots:
                    slots[holder] = (slots[holder][0], end)
            for holder in add:
                slots.setdefault(holder, (member(holder, SWEEP_TOKEN), end))
            for holder, version in stale.items():
                if holder in slots and slots[holder][1] == version:
                    del slots[holder]
