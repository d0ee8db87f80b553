"""The start-up heap is frozen until exit; the collection pacer collects on a clock, freezes survivors
and reclaims frozen garbage once memory doubled (infrastructure/gc_tuning.py)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from infrastructure.gc_tuning import CollectionPacer, CollectorStats, frozen_heap, paced_collections


def test_the_start_up_heap_is_out_of_the_collectors_way_until_exit() -> None:
    # given a process that finished starting up
    with frozen_heap():
        # then what existed is frozen (never scanned by a collection)
        assert gc.get_freeze_count() > 1000
    # and on exit it is not
    assert gc.get_freeze_count() == 0


# ---------------------------------------------------------------- the collection pacer


class Node:
    """A container that can be in a cycle and be watched with a weak reference."""

    def __init__(self) -> None:
        self.other: object = None


def garbage_cycle() -> weakref.ref[Node]:
    """Two nodes that only reach each other (nothing else does): cyclic garbage."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def thawed() -> Iterator[None]:
    """Each test starts with nothing frozen and leaves nothing frozen."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class Blocks:
    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self) -> int:
        return self.value


def test_the_pacer_collects_the_young_on_its_ticks_and_freezes_survivors_on_the_middle_one(thawed: None) -> None:
    # given a pacer whose middle tick is every third
    pacer = CollectionPacer(middle_every=3, blocks=Blocks(100))
    kept = [Node() for _ in range(1000)]
    dead = garbage_cycle()
    # when a young tick runs, cyclic garbage made since is gone
    pacer.tick()
    assert dead() is None
    assert pacer.stats.freezes == 0
    # when the middle tick runs, what survived is frozen (out of every later collection)
    frozen_before = gc.get_freeze_count()
    pacer.tick()
    pacer.tick()
    assert pacer.stats.freezes == 1
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    assert pacer.stats.reclaims == 0


def test_frozen_cyclic_garbage_waits_for_a_reclaim_which_comes_once_the_heap_doubled(thawed: None) -> None:
    # given a pacer that freezes at every middle tick, on a heap of 100 blocks
    blocks = Blocks(100)
    pacer = CollectionPacer(middle_every=1, reclaim_growth=2.0, blocks=blocks)
    assert pacer.stats.reclaim_at_blocks == 200
    # and a cycle that was alive at a freeze and became garbage afterwards
    a, b = Node(), Node()
    a.other, b.other = b, a
    watched = weakref.ref(a)
    pacer.tick()
    del a, b
    # when the heap has not doubled, the frozen garbage stays (no collection scans it)
    blocks.value = 199
    pacer.tick()
    gc.collect()
    assert watched() is not None
    # when it has, the next middle tick reclaims the whole heap once and sets the next bound
    blocks.value = 250
    pacer.tick()
    assert watched() is None
    assert pacer.stats.reclaims == 1
    assert pacer.stats.reclaim_at_blocks == 500
    assert pacer.stats.last_reclaim_seconds >= 0
    # and what is alive is frozen again
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize(("middle_every", "growth"), [(0, 2.0), (-1, 2.0), (5, 1.0), (5, 0.5)])
def test_the_pacer_refuses_settings_that_would_never_collect_or_always_reclaim(
    middle_every: int, growth: float
) -> None:
    with pytest.raises(ValueError):
        CollectionPacer(middle_every=middle_every, reclaim_growth=growth)


def test_the_next_bound_is_twice_the_live_heap_after_the_reclaim_not_before() -> None:
    # given a heap of 100 blocks that grew to 250, of which the reclaim frees 150
    heap = iter([100, 250, 100])
    pacer = CollectionPacer(middle_every=1, blocks=lambda: next(heap))
    try:
        pacer.tick()
    finally:
        gc.unfreeze()
    # then the next reclaim waits for twice what was live after it, not twice the peak
    assert pacer.stats.reclaims == 1
    assert pacer.stats.reclaim_at_blocks == 200


def test_paced_collections_tick_on_the_running_loop_until_the_block_ends(thawed: None) -> None:
    observed: list[int] = []

    async def run() -> tuple[int, int]:
        async with paced_collections(
            interval=0.01, middle_every=2, observe=lambda stats: observed.append(stats.freezes)
        ) as pacer:
            await asyncio.sleep(0.2)
        ticks = pacer.stats.ticks
        await asyncio.sleep(0.05)
        return ticks, pacer.stats.ticks

    inside, after = asyncio.run(run())
    assert inside >= 5
    assert after == inside
    # and each middle tick was observed (the /metrics gauges), in order
    assert observed == list(range(1, len(observed) + 1))
    assert len(observed) >= 2


def test_a_failing_tick_is_logged_and_the_pacer_goes_on(thawed: None, caplog: pytest.LogCaptureFixture) -> None:
    failures = 0

    def observe(stats: CollectorStats) -> None:
        nonlocal failures
        failures += 1
        raise RuntimeError("the gauges are broken")

    async def run() -> int:
        async with paced_collections(interval=0.01, middle_every=1, observe=observe) as pacer:
            await asyncio.sleep(0.15)
        return pacer.stats.ticks

    ticks = asyncio.run(run())
    assert failures >= 3
    assert ticks >= 3
    assert "a paced collection failed" in caplog.text


def test_paced_collections_refuse_a_clock_that_never_ticks() -> None:
    async def run() -> None:
        async with paced_collections(interval=0):
            pass

    with pytest.raises(ValueError):
        asyncio.run(run())
