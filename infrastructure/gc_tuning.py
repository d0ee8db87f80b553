"""Garbage-collector settings for long-running processes (API servers, workers).

A started process holds ~200,000 long-lived objects (the schema, SQLAlchemy's metadata,
the libraries' modules). CPython's default collector re-scans them in every full
collection (~0.1-0.2 s each, a stall for every request in flight) and runs a young
collection every 700 allocations. Measured on `generate` (bench/generate.py and an
in-process driver): about a sixth of a request's CPU went to the collector.

`tuned_gc` (entered once start-up is done) moves what exists then into the permanent
generation (`gc.freeze()`: never scanned again) and raises the young-generation
threshold, so young collections are rarer; almost all per-request garbage is freed
by reference counting anyway, the collector only finds cycles. On exit it restores
both, so a process that starts several apps (the tests) does not pile up frozen garbage.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator

log = logging.getLogger("genhub.gc")


@contextlib.contextmanager
def tuned_gc(young_threshold: int) -> Iterator[None]:
    """Freeze the start-up heap; `young_threshold` > 0 replaces the first collector threshold (0: keep)."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    if young_threshold > 0:
        gc.set_threshold(young_threshold, before[1], before[2])
    log.debug("gc: %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold())
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
