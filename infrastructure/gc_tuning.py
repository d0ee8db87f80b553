"""Garbage-collector settings for long-running processes (API servers, workers).

A started process holds a large heap of long-lived objects (the schema, SQLAlchemy's metadata,
the libraries' modules). CPython's collector re-scans them in every full collection, a
stall for every request in flight, and under load a large share of `generate`'s CPU went
to collections. `frozen_heap` (entered once start-up is done) moves what exists then into
the permanent generation (`gc.freeze()`), which collections never scan (bench/generate.py;
docs/benchmarks.md).

The young-generation threshold stays Python's default: raising it (10,000, 50,000) made
each young collection scan more in-flight objects and cost more in total.

No collection runs first: on a large heap one costs a noticeable pause (the test suite,
which starts hundreds of apps in one process, took minutes longer), and what little
garbage exists at start-up stays frozen until exit. Freezing and unfreezing are constant
time. On exit the heap is unfrozen again, so a process that starts several apps (the
tests) does not pile up frozen garbage.

**Collections on a clock** (`CollectionPacer`, the API process). CPython starts a young
collection when allocations exceed deallocations by `threshold0`: a net count. A process that
holds many open subscriptions replaces its objects one for one (each delivered event frees the
awaitables and the result a connection held while waiting, and makes new ones), so the count
stays near zero while the young generation grows to hundreds of thousands of live objects, and
the collection that finally comes scans them all, a long pause; and a full collection scans
every connection (bench/fanout.py --diagnose shows each collection and
the young generation's size). The pacer collects on a clock instead:

- every `interval`, the young generation (what was made since the last tick);
- every `middle_every` ticks, the middle one too, and then it freezes what survived: mostly
  long-lived state (connections and what they wait on), which no later collection scans. A
  full collection then only scans what arrived since the last freeze.

Objects freed by reference counting leave the frozen set as usual; only cyclic garbage made of
frozen objects waits (and objects frozen while in flight, a request or an operation that ends
later, are among them). So that it cannot pile up, once the heap (its allocated blocks) has
grown `reclaim_growth` times since the last full collection, the middle tick is a reclaim:
unfreeze, one full collection of the whole heap, freeze again. That pause comes only when the
heap grew by that factor (a ramp of connections, or garbage as large as the live heap), less
often than CPython's own full collections (every quarter of growth), and the frozen garbage
never exceeds that share of the heap. (Counting the frozen set instead walks every object in it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

log = logging.getLogger("genhub.gc")


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze everything the process holds now; unfreeze on exit."""
    gc.freeze()
    log.debug("gc: %d objects frozen", gc.get_freeze_count())
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class CollectorStats:
    """What the pacer did, for /metrics."""

    ticks: int = 0
    freezes: int = 0
    reclaims: int = 0
    last_reclaim_seconds: float = 0.0
    #: Allocated memory blocks (`sys.getallocatedblocks()`) that start the next reclaim.
    reclaim_at_blocks: int = 0


class CollectionPacer:
    """Young and middle collections on a clock, survivors frozen (see the module docstring).

    `blocks()` is the heap's size: the interpreter's allocated memory blocks, live objects and
    garbage not yet collected alike (reading it walks the allocator's arenas, not the objects).
    Right after a full collection it is the live heap; a reclaim comes once it has grown
    `reclaim_growth` times since. (Resident memory would not do: what a collection frees mostly
    stays resident, so the bound would ratchet up with every reclaim.)
    """

    def __init__(
        self,
        *,
        middle_every: int = 5,
        reclaim_growth: float = 2.0,
        blocks: Callable[[], int] = sys.getallocatedblocks,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if middle_every < 1 or reclaim_growth <= 1:
            raise ValueError("middle_every must be >= 1 and reclaim_growth > 1")
        self._middle_every = middle_every
        self._growth = reclaim_growth
        self._blocks = blocks
        self._clock = clock
        self.stats = CollectorStats(reclaim_at_blocks=int(reclaim_growth * blocks()))

    def tick(self) -> bool:
        """One tick; True when it was a middle one (stats changed)."""
        stats = self.stats
        stats.ticks += 1
        if stats.ticks % self._middle_every:
            gc.collect(0)
            return False
        gc.collect(1)
        if self._blocks() < stats.reclaim_at_blocks:
            gc.freeze()
            stats.freezes += 1
            return True
        started = self._clock()
        gc.unfreeze()
        gc.collect()
        live = self._blocks()
        gc.freeze()
        stats.freezes += 1
        stats.reclaims += 1
        stats.last_reclaim_seconds = self._clock() - started
        stats.reclaim_at_blocks = int(self._growth * live)
        log.info(
            "gc: reclaimed the frozen heap in %.3f s; %d blocks live, the next reclaim at %d",
            stats.last_reclaim_seconds,
            live,
            stats.reclaim_at_blocks,
        )
        return True


@contextlib.asynccontextmanager
async def paced_collections(
    interval: float = 0.05,
    middle_every: int = 5,
    reclaim_growth: float = 2.0,
    observe: Callable[[CollectorStats], None] | None = None,
) -> AsyncIterator[CollectionPacer]:
    """A `CollectionPacer` ticking every `interval` seconds on the running loop, for the block's
    duration; `observe(stats)` after each middle tick (the process's /metrics gauges)."""
    if interval <= 0:
        raise ValueError("interval must be > 0")
    pacer = CollectionPacer(middle_every=middle_every, reclaim_growth=reclaim_growth)

    async def run() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if pacer.tick() and observe is not None:
                    observe(pacer.stats)
            except Exception:  # the pacer must outlive one bad tick: without it nothing is reclaimed
                log.exception("gc: a paced collection failed")

    task = asyncio.create_task(run(), name="gc-pacer")
    try:
        yield pacer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
