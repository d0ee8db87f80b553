"""The spool budget under cancellation: every byte taken is given back, and no waiter is left behind."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.media.spool_budget import SpoolBudget

TOTAL = 100


async def queued(budget: SpoolBudget, count: int) -> None:
    """Let the loop run until `count` spools wait in the budget's queue."""
    for _ in range(100):
        if len(budget._waiters) == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"expected {count} waiters, found {len(budget._waiters)}")


async def hold(budget: SpoolBudget, wanted: int, release: asyncio.Event) -> None:
    async with budget.reserved(wanted):
        await release.wait()


async def test_a_waiter_cancelled_in_the_turn_the_budget_is_released_takes_nothing() -> None:
    # given a budget spent by one holder and a spool waiting for 60 bytes of it
    budget = SpoolBudget(TOTAL)
    waiter = asyncio.create_task(hold(budget, 60, asyncio.Event()))
    async with budget.reserved(100):
        await queued(budget, 1)
        # when the waiter is cancelled and the holder releases in the same loop turn
        waiter.cancel()
    # then the release raised nothing (the block above exited cleanly), the waiter ends cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # and nothing stays counted: the whole budget can be taken again at once
    assert budget.used == 0 and not budget._waiters
    async with asyncio.timeout(5), budget.reserved(100):
        assert budget.used == 100


async def test_a_waiter_granted_then_cancelled_in_the_same_turn_gives_its_bytes_back() -> None:
    # given a budget spent by one holder and a spool waiting for 60 bytes of it
    budget = SpoolBudget(TOTAL)
    waiter = asyncio.create_task(hold(budget, 60, asyncio.Event()))
    async with budget.reserved(100):
        await queued(budget, 1)
    # when its bytes are granted and it is cancelled before it runs again
    assert budget.used == 60
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # then it gives them back
    assert budget.used == 0 and not budget._waiters


async def test_a_cancelled_head_of_the_queue_lets_the_next_waiter_in() -> None:
    # given a holder of 50, a waiter of 100 at the head and a waiter of 50 behind it
    budget = SpoolBudget(TOTAL)
    big = asyncio.create_task(hold(budget, 100, asyncio.Event()))
    small_release = asyncio.Event()
    small = asyncio.create_task(hold(budget, 50, small_release))
    async with budget.reserved(50):
        await queued(budget, 0)  # the holder's own `reserved` has not waited
        await queued(budget, 2)
        # when the head waiter is cancelled while the holder still holds its 50
        big.cancel()
        with pytest.raises(asyncio.CancelledError):
            await big
        # then the small one, no longer queued behind it, fits beside the holder
        await queued(budget, 0)
        assert budget.used == 100
    small_release.set()
    await small
    assert budget.used == 0


Operation = tuple[str, int]
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("take"), st.integers(min_value=1, max_value=TOTAL + 50)),
        st.tuples(st.just("release"), st.integers(min_value=0, max_value=30)),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=30)),
        st.tuples(st.just("run"), st.integers(min_value=0, max_value=3)),
    ),
    max_size=40,
)


async def play(operations: list[Operation]) -> None:
    budget = SpoolBudget(TOTAL)
    tasks: list[asyncio.Task[None]] = []
    releases: list[asyncio.Event] = []
    for kind, value in operations:
        # several operations may fall in one loop turn: only "run" lets the tasks move
        if kind == "take":
            releases.append(asyncio.Event())
            tasks.append(asyncio.create_task(hold(budget, value, releases[-1])))
        elif kind == "release" and releases:
            releases[value % len(releases)].set()
        elif kind == "cancel" and tasks:
            tasks[value % len(tasks)].cancel()
        elif kind == "run":
            for _ in range(value):
                await asyncio.sleep(0)
        assert 0 <= budget.used <= TOTAL
    for release in releases:
        release.set()
    # no waiter hangs once every holder lets go
    async with asyncio.timeout(5):
        done = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in done:
        assert outcome is None or isinstance(outcome, asyncio.CancelledError), repr(outcome)
    assert budget.used == 0 and not budget._waiters


@settings(max_examples=400, deadline=None)
@given(OPERATIONS)
def test_any_sequence_of_takes_releases_and_cancels_returns_every_byte(operations: list[Operation]) -> None:
    asyncio.run(play(operations))
