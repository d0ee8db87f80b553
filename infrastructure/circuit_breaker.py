"""Per-provider circuit breakers (the `CircuitBreaker` port): on Redis for every worker, in memory for one process.

The rules are in domain/provider_health.py. On Redis each provider's circuit is one hash
(`<TASK_QUEUE_NAME>:circuit:{provider}`: consecutive failures, open until, probe lease), changed by one Lua
script per call on Redis's own clock, so workers on hosts with skewed clocks agree on when
a cool-down ends and only one of them sends the half-open probe. Recent outcomes (the error
rate) are counted in per-minute hashes that expire after the window.

While Redis cannot be reached, `FallbackCircuitBreaker` keeps circuits in this process (as
the rate limits do, infrastructure/ratelimit_fallback.py): each worker then opens and probes
on its own, and what it counted is not carried back when Redis answers again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

from domain.ports import CircuitBreaker
from domain.provider_health import CircuitPolicy, CircuitState, ProviderHealth
from infrastructure.metrics import CIRCUIT_FALLBACKS
from infrastructure.outages import REDIS, as_unavailable

log = logging.getLogger("genhub.providers")

BUCKET_SECONDS = 60
RETRY_REDIS_SECONDS = 1.0

# KEYS[1] circuit hash. ARGV[1] probe lease (ms). 1: allowed.
_ALLOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then
  return 1
end
if now < open_until then
  return 0
end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < probe_until then
  return 0
end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[1]))
return 1
"""

# KEYS[1] circuit hash, KEYS[2] this minute's outcome counts. ARGV: ok (1/0), failures to open,
# cool-down (ms), outcome counts' lifetime (ms). Returns the consecutive failures.
_RECORD_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ok = ARGV[1] == '1'
redis.call('HINCRBY', KEYS[2], ok and 'ok' or 'fail', 1)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
if ok then
  redis.call('DEL', KEYS[1])
  return 0
end
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until > 0 or fails >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[3]))
  redis.call('HDEL', KEYS[1], 'probe_until')
end
return fails
"""


def _buckets(now: float, window_seconds: int) -> list[int]:
    current = math.floor(now / BUCKET_SECONDS)
    return [current - i for i in range(max(1, math.ceil(window_seconds / BUCKET_SECONDS)))]


class RedisCircuitBreaker:
    def __init__(self, redis: Redis, policy: CircuitPolicy, *, prefix: str = "circuit:") -> None:
        self._redis = redis
        self._policy = policy
        self._prefix = prefix
        self._allow = redis.register_script(_ALLOW_LUA)
        self._record = redis.register_script(_RECORD_LUA)

    def _key(self, provider: str) -> str:
        return f"{self._prefix}{provider}"

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> int:
        # redis-py's Script loads itself again when Redis forgot it (NOSCRIPT after a restart).
        return int(await script(keys=keys, args=args))

    async def allow(self, provider: str) -> bool:
        lease_ms = int(self._policy.cooldown_seconds * 1000)
        return await self._run(self._allow, [self._key(provider)], [lease_ms]) == 1

    async def record(self, provider: str, *, ok: bool) -> None:
        p = self._policy
        bucket = _buckets(time.time(), p.window_seconds)[0]
        keys = [self._key(provider), f"{self._key(provider)}:outcomes:{bucket}"]
        lifetime_ms = (p.window_seconds + BUCKET_SECONDS) * 1000
        await self._run(
            self._record, keys, [1 if ok else 0, p.failures_to_open, int(p.cooldown_seconds * 1000), lifetime_ms]
        )

    async def health(self, providers: Sequence[str]) -> list[ProviderHealth]:
        buckets = _buckets(time.time(), self._policy.window_seconds)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.time()
            for provider in providers:
                pipe.hgetall(self._key(provider))
                for bucket in buckets:
                    pipe.hgetall(f"{self._key(provider)}:outcomes:{bucket}")
            answers = await pipe.execute()
        seconds, micros = cast(tuple[int, int], answers[0])
        now_ms = seconds * 1000 + micros // 1000
        found = []
        per = 1 + len(buckets)
        for i, provider in enumerate(providers):
            circuit = _decoded(answers[1 + i * per])
            counts = [_decoded(h) for h in answers[2 + i * per : 1 + (i + 1) * per]]
            open_until = int(circuit.get("open_until", "0"))
            state = (
                CircuitState.CLOSED
                if open_until == 0
                else CircuitState.OPEN
                if now_ms < open_until
                else CircuitState.HALF_OPEN
            )
            found.append(
                ProviderHealth(
                    provider=provider,
                    state=state,
                    consecutive_failures=int(circuit.get("fails", "0")),
                    recent_successes=sum(int(c.get("ok", "0")) for c in counts),
                    recent_failures=sum(int(c.get("fail", "0")) for c in counts),
                    open_until=datetime.fromtimestamp(open_until / 1000, UTC) if open_until else None,
                )
            )
        return found


def _decoded(mapping: Any) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
        for k, v in (mapping or {}).items()
    }


@dataclass
class _Circuit:
    fails: int = 0
    open_until: float = 0.0  # wall clock; 0: closed
    probe_until: float = 0.0


class MemoryCircuitBreaker:
    """The same rules for one process (the embedded default, and while Redis is down)."""

    def __init__(self, policy: CircuitPolicy, *, clock: Callable[[], float] = time.time) -> None:
        self._policy = policy
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._outcomes: dict[tuple[str, int], list[int]] = {}
        self._lock = threading.Lock()

    async def allow(self, provider: str) -> bool:
        now = self._clock()
        with self._lock:
            circuit = self._circuits.get(provider)
            if circuit is None or circuit.open_until == 0.0:
                return True
            if now < circuit.open_until or now < circuit.probe_until:
                return False
            circuit.probe_until = now + self._policy.cooldown_seconds
            return True

    async def record(self, provider: str, *, ok: bool) -> None:
        now = self._clock()
        buckets = _buckets(now, self._policy.window_seconds)
        with self._lock:
            for key in [k for k in self._outcomes if k[0] == provider and k[1] not in buckets]:
                del self._outcomes[key]
            counts = self._outcomes.setdefault((provider, buckets[0]), [0, 0])
            counts[0 if ok else 1] += 1
            if ok:
                self._circuits.pop(provider, None)
                return
            circuit = self._circuits.setdefault(provider, _Circuit())
            circuit.fails += 1
            if circuit.open_until or circuit.fails >= self._policy.failures_to_open:
                circuit.open_until = now + self._policy.cooldown_seconds
                circuit.probe_until = 0.0

    async def health(self, providers: Sequence[str]) -> list[ProviderHealth]:
        now = self._clock()
        buckets = _buckets(now, self._policy.window_seconds)
        found = []
        with self._lock:
            for provider in providers:
                circuit = self._circuits.get(provider, _Circuit())
                counts = [self._outcomes.get((provider, b), [0, 0]) for b in buckets]
                state = (
                    CircuitState.CLOSED
                    if not circuit.open_until
                    else CircuitState.OPEN
                    if now < circuit.open_until
                    else CircuitState.HALF_OPEN
                )
                found.append(
                    ProviderHealth(
                        provider=provider,
                        state=state,
                        consecutive_failures=circuit.fails,
                        recent_successes=sum(c[0] for c in counts),
                        recent_failures=sum(c[1] for c in counts),
                        open_until=datetime.fromtimestamp(circuit.open_until, UTC) if circuit.open_until else None,
                    )
                )
        return found


class FallbackCircuitBreaker:
    """`primary` (Redis) while it answers; `fallback` (this process) while it cannot be reached."""

    def __init__(
        self,
        primary: CircuitBreaker,
        fallback: CircuitBreaker,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_after: float = RETRY_REDIS_SECONDS,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._clock = clock
        self._retry_after = retry_after
        self._down_until = 0.0

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._clock() >= self._down_until:
            try:
                answer = await getattr(self._primary, name)(*args, **kwargs)
            except Exception as exc:
                if as_unavailable(exc, REDIS) is None:
                    raise
                if self._down_until == 0.0:
                    log.warning("provider circuits kept in this process while Redis is unavailable: %s", exc)
                self._down_until = self._clock() + self._retry_after
            else:
                if self._down_until:
                    log.info("provider circuits kept in Redis again")
                    self._down_until = 0.0
                return answer
        CIRCUIT_FALLBACKS.inc()
        return await getattr(self._fallback, name)(*args, **kwargs)

    async def allow(self, provider: str) -> bool:
        return bool(await self._call("allow", provider))

    async def record(self, provider: str, *, ok: bool) -> None:
        await self._call("record", provider, ok=ok)

    async def health(self, providers: Sequence[str]) -> list[ProviderHealth]:
        return cast(list[ProviderHealth], await self._call("health", providers))
