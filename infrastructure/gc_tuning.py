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
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator

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
