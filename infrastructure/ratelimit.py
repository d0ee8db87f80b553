"""Sliding-window rate limiters (the `RateLimiter` port): in memory and on Redis.

`hit()` counts one request and returns 0 when it is allowed, else the whole seconds
(at least 1) until a slot frees. Rejected hits are not counted, so a caller that
waits and retries (a submit waiting for its provider's rate,
domain/use_cases/routed_submission.py) is not punished for asking.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from domain.ports import RateBucket
from infrastructure.redis_pipelining import AutoPipeline

# Sweep idle buckets every this many hits so a long-lived process does not keep
# one deque per user it has ever seen.
_SWEEP_EVERY = 1024


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class MemoryRateLimiter:
    """Sliding-window log per bucket, for one process (the embedded default).

    `hit` never awaits while it holds the lock, so it is atomic for coroutines on
    one event loop; the thread lock makes it safe across threads/loops too.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._windows: dict[str, int] = {}
        self._lock = threading.Lock()
        self._since_sweep = 0

    async def hit(self, bucket: str, *, limit: int, window_seconds: int) -> int:
        return await self.hit_all([RateBucket(bucket, limit, window_seconds)])

    async def hit_all(self, buckets: Sequence[RateBucket]) -> int:
        now = self._clock()
        with self._lock:
            self._maybe_sweep(now)
            waits = [self._wait(b, now) for b in buckets]
            if any(waits):
                return max(waits)
            for b in buckets:
                self._hits[b.name].append(now)
            return 0

    def _wait(self, bucket: RateBucket, now: float) -> int:
        """Seconds until `bucket` has a free slot (0: free now), after dropping hits older than its window."""
        log = self._hits.setdefault(bucket.name, deque())
        self._windows[bucket.name] = bucket.window_seconds
        horizon = now - bucket.window_seconds
        while log and log[0] <= horizon:
            log.popleft()
        if bucket.limit <= 0:
            return _whole_seconds(bucket.window_seconds)
        if len(log) < bucket.limit:
            return 0
        # The slot that frees first is the one taken `limit` hits ago.
        return _whole_seconds(log[-bucket.limit] + bucket.window_seconds - now)

    def _maybe_sweep(self, now: float) -> None:
        self._since_sweep += 1
        if self._since_sweep < _SWEEP_EVERY:
            return
        self._since_sweep = 0
        idle = [key for key, log in self._hits.items() if not log or log[-1] <= now - self._windows[key]]
        for key in idle:
            del self._hits[key]
            del self._windows[key]


# KEYS: the bucket keys; ARGV: a unique member, then window (ms) and limit of each key.
# Every bucket is checked first; the hit is added to all of them only when all have
# room (else the longest wait in ms is returned). The server's clock is used so
# processes on hosts with skewed clocks agree.
_SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local longest = 0
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local wait = 0
  if limit <= 0 then
    wait = window
  else
    local count = redis.call('ZCARD', key)
    if count >= limit then
      local freeing = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
      wait = math.max(1, tonumber(freeing[2]) + window - now)
    end
  end
  longest = math.max(longest, wait)
end
if longest > 0 then
  return longest
end
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i])
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, window)
end
return 0
"""


class _MemberNames:
    """Names of the entries of the windows' sorted sets, unique across processes without a uuid
    per hit: a random prefix per process and a counter. A forked child gets a new prefix (it
    would repeat its parent's names, and a repeated name overwrites an entry instead of adding one)."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self._prefix = uuid.uuid4().hex + ":"
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter)}"


_MEMBERS = _MemberNames()
os.register_at_fork(after_in_child=_MEMBERS.renew)


class RedisRateLimiter:
    """Sliding windows on Redis sorted sets, one atomic Lua script per hit (of one or more buckets).

    Hits go out through an `AutoPipeline`: concurrent requests share round trips.

    Correct across processes and hosts: every replica shares the same set, and the
    check-and-add happens inside Redis.
    """

    def __init__(self, redis: Redis, prefix: str = "rl:", *, pipeline: AutoPipeline | None = None) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW_LUA)
        self._own_pipeline = pipeline is None
        self._pipeline = pipeline or AutoPipeline(redis)

    async def aclose(self) -> None:
        """Close the pipeline's connection when it is the limiter's own (a shared one belongs to its owner)."""
        if self._own_pipeline:
            await self._pipeline.aclose()

    async def hit(self, bucket: str, *, limit: int, window_seconds: int) -> int:
        return await self.hit_all([RateBucket(bucket, limit, window_seconds)])

    async def hit_all(self, buckets: Sequence[RateBucket]) -> int:
        """One round trip (one script run) for every bucket of a request."""
        args: list[str | int] = [_MEMBERS.next()]
        for b in buckets:
            args += [int(b.window_seconds * 1000), b.limit]
        keys = [self._prefix + b.name for b in buckets]
        command = ("EVALSHA", self._script.sha, len(keys), *keys, *args)
        try:
            wait_ms = await self._pipeline.call(*command)
        except NoScriptError:  # a restarted (or flushed) Redis forgot the script: load it once more
            await self._redis.script_load(_SLIDING_WINDOW_LUA)
            wait_ms = await self._pipeline.call(*command)
        wait = int(cast(int, wait_ms))
        return 0 if wait <= 0 else _whole_seconds(wait / 1000)
