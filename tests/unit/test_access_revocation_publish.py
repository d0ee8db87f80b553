"""A revocation whose publish fails is published again in the background, a bounded number of times
(infrastructure/access_revocations.py), so other replicas hear it soon rather than after the gate's TTL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from domain.use_cases.access_gate import AccessGate
from infrastructure.access_revocations import CHANNEL, BroadcastRevocations, decode
from tests.unit.fakes import FakeClock


class FlakyBroadcast:
    """Fails the first `failures` publishes, then records them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.published: list[tuple[str, str]] = []

    async def publish(self, channel: str, message: str) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("redis unreachable")
        self.published.append((channel, message))


def revocations(broadcast: FlakyBroadcast, retries: int = 3) -> BroadcastRevocations:
    gate = AccessGate(ttl_seconds=30, session_window=timedelta(minutes=16), clock=FakeClock(), monotonic=lambda: 0.0)
    return BroadcastRevocations(broadcast, gate, publish_retries=retries, retry_base_seconds=0.001)


async def wait_for(condition: object, what: str) -> None:
    async with asyncio.timeout(5):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.001)


async def test_a_failed_publish_is_retried_until_it_goes_through() -> None:
    broadcast = FlakyBroadcast(failures=2)
    subject = revocations(broadcast)
    user, key = uuid.uuid4(), uuid.uuid4()
    await subject.announce(user, api_key=key)
    assert subject.publish_failures == 1
    await wait_for(lambda: subject.publish_retried == 1, "the retry")
    assert [(c, decode(m)) for c, m in broadcast.published] == [(CHANNEL, (user, key))]
    assert broadcast.attempts == 3 and subject.publish_abandoned == 0


async def test_retries_are_bounded_then_given_up() -> None:
    broadcast = FlakyBroadcast(failures=1_000)
    subject = revocations(broadcast, retries=3)
    await subject.announce(uuid.uuid4())
    await wait_for(lambda: subject.publish_abandoned == 1, "giving up")
    assert broadcast.attempts == 4 and broadcast.published == []


async def test_stop_cancels_the_pending_retries() -> None:
    broadcast = FlakyBroadcast(failures=1_000)
    subject = BroadcastRevocations(
        broadcast,
        AccessGate(ttl_seconds=30, session_window=timedelta(minutes=16), clock=FakeClock(), monotonic=lambda: 0.0),
        publish_retries=3,
        retry_base_seconds=60.0,
    )
    await subject.announce(uuid.uuid4())
    await subject.stop()
    assert broadcast.attempts == 1
