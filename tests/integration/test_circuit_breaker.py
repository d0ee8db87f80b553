"""Provider circuits on a real Redis: shared by separate clients (as worker processes are), one probe per cool-down
among concurrent callers, and kept in process while Redis does not answer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from domain.provider_health import CircuitPolicy, CircuitState
from infrastructure.circuit_breaker import FallbackCircuitBreaker, MemoryCircuitBreaker, RedisCircuitBreaker

pytestmark = [pytest.mark.redis]

POLICY = CircuitPolicy(failures_to_open=3, cooldown_seconds=60, window_seconds=300)


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        yield first, second
    finally:
        await first.aclose()
        await second.aclose()


def breakers(clients: tuple[Redis, Redis]) -> tuple[RedisCircuitBreaker, RedisCircuitBreaker, str]:
    prefix = f"test-{uuid.uuid4().hex[:8]}:circuit:"
    return (
        RedisCircuitBreaker(clients[0], POLICY, prefix=prefix),
        RedisCircuitBreaker(clients[1], POLICY, prefix=prefix),
        prefix,
    )


async def end_cooldown(redis: Redis, key: str) -> None:
    seconds, micros = await redis.time()
    await redis.hset(key, "open_until", seconds * 1000 + micros // 1000 - 1)


async def test_failures_counted_by_two_clients_open_one_circuit_and_a_success_closes_it(
    clients: tuple[Redis, Redis],
) -> None:
    a, b, prefix = breakers(clients)
    # given failures recorded by one worker and then another
    await a.record("kie", ok=False)
    await b.record("kie", ok=False)
    assert await a.allow("kie") and await b.allow("kie")
    await a.record("kie", ok=False)
    # then the circuit is open for both
    assert not await a.allow("kie") and not await b.allow("kie")
    [health] = await b.health(["kie"])
    assert (health.state, health.consecutive_failures, health.recent_failures) == (CircuitState.OPEN, 3, 3)
    assert health.open_until is not None and health.error_rate == 1.0
    # and another provider is untouched
    assert await a.allow("simulated")
    # when the cool-down is over: exactly one of many concurrent callers gets the probe
    await end_cooldown(clients[0], f"{prefix}kie")
    assert (await a.health(["kie"]))[0].state is CircuitState.HALF_OPEN
    answers = await asyncio.gather(*(br.allow("kie") for br in (a, b) for _ in range(10)))
    assert sum(answers) == 1
    # and its success closes the circuit for everyone
    await b.record("kie", ok=True)
    assert await a.allow("kie")
    [health] = await a.health(["kie"])
    assert (health.state, health.consecutive_failures, health.recent_successes) == (CircuitState.CLOSED, 0, 1)


async def test_a_failed_probe_opens_the_circuit_again(clients: tuple[Redis, Redis]) -> None:
    a, b, prefix = breakers(clients)
    for _ in range(3):
        await a.record("kie", ok=False)
    await end_cooldown(clients[0], f"{prefix}kie")
    assert await b.allow("kie")
    await b.record("kie", ok=False)
    assert not await a.allow("kie") and (await a.health(["kie"]))[0].state is CircuitState.OPEN


async def test_circuits_are_kept_in_process_while_redis_does_not_answer() -> None:
    # given a Redis that refuses connections
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    fallback = MemoryCircuitBreaker(POLICY)
    breaker = FallbackCircuitBreaker(RedisCircuitBreaker(dead, POLICY), fallback)
    try:
        # when failures are recorded: the process's own circuit counts them and opens
        for _ in range(3):
            await breaker.record("kie", ok=False)
        assert not await breaker.allow("kie")
        [health] = await breaker.health(["kie"])
        assert health.state is CircuitState.OPEN
    finally:
        await dead.aclose()
