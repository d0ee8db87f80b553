"""Garbage-collector settings for long-running processes (API servers, workers).

A started process holds a large heap of long-lived objects (the schema, SQLAlchemy's metadata,
the libraries' modules). CPython's collector re-scans them in every full collection, a
stall of a tenth of a second or more for every request in flight, and under load a
large share of `generate`'s CPU went to collections. `frozen_heap` (entered once
start-up is done) moves what exists then into the permanent generation (`gc.freeze()`),
which collections never scan (bench/generate.py: 464 -> 502 requests/s).

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
the collection that finally comes scans them all: a pause of a tenth of a second and more, and a
full collection scans every connection (bench/fanout.py --diagnose shows each collection and
the young generation's size). The pacer collects on a clock instead:

- every `interval`, the young generation (what was made since the last tick);
- every `middle_every` ticks, the middle one too, and then it freezes what survived: mostly
  long-lived state (connections and what they wait on), which no later collection scans. A
  full collection then only scans what arrived since the last freeze.

Objects freed by reference counting leave the frozen set as usual; only cyclic garbage made of
frozen objects waits. So that it cannot pile up, once the process's resident memory has grown
`reclaim_growth` times since the last reclaim, the middle tick is a reclaim: unfreeze, one full
collection of the whole heap, freeze again. That pause comes only when the process grew by that
factor (a ramp of connections), less often than CPython's own full collections (every quarter
of growth), and the frozen garbage never exceeds that share of the memory. (Resident memory is
the measure because it is cheap to read; counting the frozen set walks every object in it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
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
    #: Resident bytes that start the next reclaim.
    reclaim_at_bytes: int = 0


def resident_bytes() -> int:
    """This process's resident memory (Linux: /proc; elsewhere its peak, which only grows)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class CollectionPacer:
    """Young and middle collections on a clock, survivors frozen (see the module docstring)."""

    def __init__(
        self,
        *,
        middle_every: int = 5,
        reclaim_growth: float = 2.0,
        memory: Callable[[], int] = resident_bytes,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if middle_every < 1 or reclaim_growth <= 1:
            raise ValueError("middle_every must be >= 1 and reclaim_growth > 1")
        self._middle_every = middle_every
        self._growth = reclaim_growth
        self._memory = memory
        self._clock = clock
        self.stats = CollectorStats(reclaim_at_bytes=int(reclaim_growth * memory()))

    def tick(self) -> None:
        stats = self.stats
        stats.ticks += 1
        if stats.ticks % self._middle_every:
            gc.collect(0)
            return
        gc.collect(1)
        if self._memory() < stats.reclaim_at_bytes:
            gc.freeze()
            stats.freezes += 1
            return
        started = self._clock()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        stats.freezes += 1
        stats.reclaims += 1
        stats.last_reclaim_seconds = self._clock() - started
        stats.reclaim_at_bytes = int(self._growth * self._memory())
        log.info(
            "gc: reclaimed the frozen heap in %.3f s; the next reclaim at %d MiB",
            stats.last_reclaim_seconds,
            stats.reclaim_at_bytes >> 20,
        )


@contextlib.asynccontextmanager
async def paced_collections(interval: float = 0.05, middle_every: int = 5) -> AsyncIterator[CollectionPacer]:
    """A `CollectionPacer` ticking every `interval` seconds on the running loop, for the block's duration."""
    if interval <= 0:
        raise ValueError("interval must be > 0")
    pacer = CollectionPacer(middle_every=middle_every)

    async def run() -> None:
        while True:
            await asyncio.sleep(interval)
            pacer.tick()

    task = asyncio.create_task(run(), name="gc-pacer")
    try:
        yield pacer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
