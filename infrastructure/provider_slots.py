"""In-flight slots per provider and their waiting lines (the `ProviderSlots` port): on Redis for every worker, in
memory for one process.

On Redis each provider's slots are one sorted set (`<TASK_QUEUE_NAME>:slots:{provider}`): a member
per holder (`<generation id>:<claim token>`, one per generation), scored with the end of its lease in
milliseconds of Redis's own clock. Taking a slot is one Lua script (drop the expired, renew a
holder's own slot or take it over from its earlier claim, else add it when fewer than the limit
hold one or wait ahead of it, below), so concurrent submitters on any number of hosts never exceed the limit. A submitter
frees only its own claim's member. A holder whose worker died frees its slot when its lease ends; the sweep
(domain/use_cases/provider_slots.py) renews the slots of what runs and drops the others sooner.

Next to each provider's slots is its waiting line, changed by the same scripts: a sorted set of tickets
(`<set>:line`, a generation scored with the time of its first refusal, kept across its tries: NX) and one of
liveness (`<set>:alive`, the same generation scored with when its place lapses, pushed on each try). A slot is
given only when `held + live waiters ahead < limit`: a waiter that holds a slot (it is counted in `held`)
and the asker itself are not counted ahead, and one that is not in line counts every live waiter as ahead.
Equal tickets are ordered by the generation's id (as the sorted set orders them). A ticket stays while its
generation holds a slot (counted once, in `held`) and goes when the generation leaves the lines (`leave`: a
provider was asked or took its job, or it ended), so a slot taken and given back unused (the route then skipped
for its rate limit or an open circuit) keeps the generation's place; a waiter whose liveness lapsed drops out at the next script. Members that are not generation ids
are ignored (never counted ahead). The providers that ever had a line are listed in one set
(`<prefix>_lines`), so a generation that ends can leave every line without knowing where it stood. A Redis
restart loses the lines with the slots: nothing waits on a lost ticket, the next tries take new ones.

There is no in-process fallback while Redis cannot be reached: taking a slot fails (the caller
skips the route and retries later), since counting per process would let every worker fill
the provider's whole limit.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
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

# Scripts that see a line too: KEYS[2] its tickets (generation -> first refusal, ms), KEYS[3] their liveness
# (generation -> when its place lapses, ms). `drop_lapsed` takes out the waiters that stopped trying;
# `expire_line` keeps both keys as long as the latest liveness.
_LINE_LUA = """
local function ours(generation)
  return string.match(generation, '^%x+%-%x+%-%x+%-%x+%-%x+$') ~= nil
end
local function drop_lapsed()
  for _, waiter in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
    redis.call('ZREM', KEYS[2], waiter)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
local function expire_line()
  local top = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  if top[2] then
    local at = math.floor(tonumber(top[2])) + 1
    redis.call('PEXPIREAT', KEYS[2], at)
    redis.call('PEXPIREAT', KEYS[3], at)
  end
end
local function leave(generation)
  redis.call('ZREM', KEYS[2], generation)
  redis.call('ZREM', KEYS[3], generation)
end
"""

# KEYS[4] the set of providers with a line. ARGV: generation, member (generation:token), limit, lease (ms),
# liveness (ms; 0: a refusal takes no ticket), provider. 1: held (taken, renewed or taken over), 0: refused.
_ACQUIRE_LUA = (
    _COMMON_LUA
    + _LINE_LUA
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
drop_lapsed()
local mine = held(ARGV[1])
if mine then
  if mine ~= ARGV[2] then
    redis.call('ZREM', KEYS[1], mine)
  end
else
  -- Who holds a slot: counted once, in `held`, even when also in line.
  local holding, count = {}, 0
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    holding[string.match(member, '^(.*):[^:]*$') or member] = true
    count = count + 1
  end
  local room = tonumber(ARGV[3]) - count
  if room > 0 then
    -- Fewer than `room` live waiters ahead of this generation (every live waiter when it is not in line)?
    local ahead, start = 0, 0
    while ahead < room do
      local batch = redis.call('ZRANGE', KEYS[2], start, start + 63)
      if #batch == 0 then
        break
      end
      local reached = false
      for _, waiter in ipairs(batch) do
        if waiter == ARGV[1] then
          reached = true
          break
        end
        if ours(waiter) and not holding[waiter] and redis.call('ZSCORE', KEYS[3], waiter) then
          ahead = ahead + 1
          if ahead >= room then
            break
          end
        end
      end
      if reached then
        break
      end
      start = start + 64
    end
    if ahead >= room then
      room = 0
    end
  end
  if room <= 0 then
    if tonumber(ARGV[5]) > 0 then
      redis.call('ZADD', KEYS[2], 'NX', now, ARGV[1])
      redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[1])
      redis.call('SADD', KEYS[4], ARGV[6])
      expire_line()
    end
    return 0
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
expire()
expire_line()
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

# KEYS: pairs of (tickets, liveness) of each line to leave. ARGV: the generation.
_LEAVE_LUA = """
for i = 1, #KEYS, 2 do
  redis.call('ZREM', KEYS[i], ARGV[1])
  redis.call('ZREM', KEYS[i + 1], ARGV[1])
end
return 1
"""

# KEYS[2], KEYS[3] one line. ARGV: the generations to take out of it. Returns the live waiters left, with their
# tickets.
_WAITERS_LUA = (
    _COMMON_LUA
    + _LINE_LUA
    + """
drop_lapsed()
for i = 1, #ARGV do
  leave(ARGV[i])
end
local found = {}
local flat = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #flat, 2 do
  if redis.call('ZSCORE', KEYS[3], flat[i]) then
    found[#found + 1] = flat[i]
    found[#found + 1] = flat[i + 1]
  end
end
return found
"""
)

#: The claim token of a slot the sweep (not a submit) gave to a generation that runs at the provider.
SWEEP_TOKEN = "sweep"


def _ms(lease: timedelta) -> int:
    return max(1, int(lease.total_seconds() * 1000))


def member(holder: uuid.UUID, token: uuid.UUID | str | None) -> str:
    """A slot's member: the generation and the claim that took it (at most one member per generation)."""
    return f"{holder}:{token if token is not None else '-'}"


def _scored(flat: list[Any]) -> dict[uuid.UUID, float]:
    """A script's `member, score, ...` reply by generation; members that are not ours are left out (to their
    lease, or their place's lapse)."""
    found: dict[uuid.UUID, float] = {}
    for raw, score in zip(flat[::2], flat[1::2], strict=True):
        generation = generation_of(raw.decode() if isinstance(raw, bytes) else str(raw))
        if generation is not None:
            found[generation] = float(score)
    return found


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
        self._leave = redis.register_script(_LEAVE_LUA)
        self._waiters = redis.register_script(_WAITERS_LUA)

    def _key(self, provider: str) -> str:
        return f"{self._prefix}{provider}"

    def _line(self, provider: str) -> list[str]:
        key = self._key(provider)
        return [key, f"{key}:line", f"{key}:alive"]

    @property
    def _lines(self) -> str:
        # No provider's name starts with "_" (settings.py): never one's slots.
        return f"{self._prefix}_lines"

    async def acquire(
        self,
        provider: str,
        holder: uuid.UUID,
        *,
        limit: int,
        lease: timedelta,
        token: uuid.UUID | None = None,
        wait: timedelta | None = None,
    ) -> bool:
        # redis-py's Script loads itself again when Redis forgot it (NOSCRIPT after a restart).
        liveness = _ms(wait) if wait is not None else 0
        args: list[str | int] = [str(holder), member(holder, token), limit, _ms(lease), liveness, provider]
        taken = await self._acquire(keys=[*self._line(provider), self._lines], args=args)
        return int(taken) == 1

    async def leave(self, holder: uuid.UUID, *, keep: Collection[str] = ()) -> None:
        providers = sorted(
            name
            for raw in await self._redis.smembers(self._lines)
            if (name := raw.decode() if isinstance(raw, bytes) else str(raw)) not in keep
        )
        if providers:
            keys = [key for provider in providers for key in self._line(provider)[1:]]
            await self._leave(keys=keys, args=[str(holder)])

    async def waiters(self, provider: str) -> dict[uuid.UUID, float]:
        return await self.dismiss(provider, [])

    async def dismiss(self, provider: str, waiters: Sequence[uuid.UUID]) -> dict[uuid.UUID, float]:
        return _scored(await self._waiters(keys=self._line(provider), args=[str(g) for g in waiters]))

    async def release(self, provider: str, holder: uuid.UUID, *, token: uuid.UUID | None = None) -> None:
        only = member(holder, token) if token is not None else ""
        await self._release(keys=[self._key(provider)], args=[str(holder), only])

    async def holders(self, provider: str) -> dict[uuid.UUID, float]:
        return _scored(await self._holders(keys=[self._key(provider)], args=[]))

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
        # provider -> waiting generation -> (its ticket: its first refusal, when its place lapses)
        self._lines: dict[str, dict[uuid.UUID, tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def _live(self, provider: str, now: float) -> dict[uuid.UUID, tuple[str, float]]:
        slots = self._slots.setdefault(provider, {})
        for holder in [h for h, (_, end) in slots.items() if end <= now]:
            del slots[holder]
        return slots

    def _line(self, provider: str, now: float) -> dict[uuid.UUID, tuple[float, float]]:
        line = self._lines.setdefault(provider, {})
        for waiter in [w for w, (_, alive) in line.items() if alive <= now]:
            del line[waiter]
        return line

    async def acquire(
        self,
        provider: str,
        holder: uuid.UUID,
        *,
        limit: int,
        lease: timedelta,
        token: uuid.UUID | None = None,
        wait: timedelta | None = None,
    ) -> bool:
        now = self._clock()
        with self._lock:
            slots = self._live(provider, now)
            line = self._line(provider, now)
            if holder not in slots:
                mine = line.get(holder)
                place = (mine[0], str(holder)) if mine is not None else None
                ahead = sum(
                    1
                    for waiter, (ticket, _) in line.items()
                    if waiter != holder and waiter not in slots and (place is None or (ticket, str(waiter)) < place)
                )
                if len(slots) + ahead >= limit:
                    if wait is not None:
                        ticket = mine[0] if mine is not None else now
                        line[holder] = (ticket, now + wait.total_seconds())
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

    async def leave(self, holder: uuid.UUID, *, keep: Collection[str] = ()) -> None:
        with self._lock:
            for provider, line in self._lines.items():
                if provider not in keep:
                    line.pop(holder, None)

    async def waiters(self, provider: str) -> dict[uuid.UUID, float]:
        return await self.dismiss(provider, [])

    async def dismiss(self, provider: str, waiters: Sequence[uuid.UUID]) -> dict[uuid.UUID, float]:
        with self._lock:
            line = self._line(provider, self._clock())
            for waiter in waiters:
                line.pop(waiter, None)
            return {waiter: ticket for waiter, (ticket, _) in line.items()}

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
