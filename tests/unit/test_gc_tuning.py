"""The collector settings of long-running processes are applied on start and restored on exit."""

from __future__ import annotations

import gc

from infrastructure.gc_tuning import tuned_gc


def test_the_start_up_heap_is_frozen_and_young_collections_are_rarer() -> None:
    # given the interpreter's own settings
    before = gc.get_threshold()
    # when a process finishes starting up
    with tuned_gc(12_345):
        # then what existed is out of the collector's way, and the first threshold is raised
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold() == (12_345, before[1], before[2])
    # and on exit both are as they were
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_zero_keeps_the_threshold() -> None:
    before = gc.get_threshold()
    with tuned_gc(0):
        assert gc.get_threshold() == before
