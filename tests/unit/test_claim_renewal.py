"""`renewing`: the work is stopped when the claim is lost, and a cancellation of the caller always gets through."""

from __future__ import annotations

import asyncio

import pytest

from domain.use_cases.claim_renewal import ClaimLost, renewing


async def settled(condition: asyncio.Event) -> None:
    async with asyncio.timeout(5):
        await condition.wait()


class SlowToStop:
    """Work that, once cancelled, takes until `let_go` to wind down (as a spool removing its file)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.stopping = asyncio.Event()
        self.let_go = asyncio.Event()

    async def work(self) -> str:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.stopping.set()
            await self.let_go.wait()
            raise
        return "never"


async def test_a_cancellation_while_the_lost_claims_work_winds_down_is_not_turned_into_claim_lost() -> None:
    # given work under a claim whose renewal says it is lost, and which is slow to stop
    slow = SlowToStop()

    async def lost() -> bool:
        return False

    outer = asyncio.create_task(renewing(slow.work(), lost, every=0.01))
    await settled(slow.stopping)
    # when the caller is cancelled while the work winds down
    outer.cancel()
    slow.let_go.set()
    # then the caller ends cancelled, not with ClaimLost
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert outer.cancelled()


async def test_a_second_cancellation_mid_beat_propagates() -> None:
    # given a renewal in the middle of its beat (its query still running)
    slow = SlowToStop()
    in_renewal = asyncio.Event()

    async def renew() -> bool:
        in_renewal.set()
        await asyncio.Event().wait()
        return True

    outer = asyncio.create_task(renewing(slow.work(), renew, every=0.01))
    await settled(in_renewal)
    # when the caller is cancelled, and cancelled again while the work winds down
    outer.cancel()
    await settled(slow.stopping)
    outer.cancel()
    # then it stops at the second cancellation, without waiting for the work to finish winding down
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await asyncio.shield(outer)
    assert outer.cancelled() and not slow.let_go.is_set()
    slow.let_go.set()


async def test_a_lost_claim_raises_claim_lost_once_the_work_has_stopped() -> None:
    slow = SlowToStop()
    slow.let_go.set()

    async def lost() -> bool:
        return False

    with pytest.raises(ClaimLost):
        await renewing(slow.work(), lost, every=0.01)
    assert slow.stopping.is_set()


async def test_the_work_result_is_returned_while_the_claim_holds() -> None:
    beats = 0

    async def renew() -> bool:
        nonlocal beats
        beats += 1
        return True

    async def work() -> int:
        await asyncio.sleep(0.05)
        return 7

    assert await renewing(work(), renew, every=0.01) == 7
    assert beats >= 1
