"""The start-up heap of a long-running process is frozen, and unfrozen on exit."""

from __future__ import annotations

import gc

from infrastructure.gc_tuning import frozen_heap


def test_the_start_up_heap_is_out_of_the_collectors_way_until_exit() -> None:
    # given a process that finished starting up
    with frozen_heap():
        # then what existed is frozen (never scanned by a collection)
        assert gc.get_freeze_count() > 1000
    # and on exit it is not
    assert gc.get_freeze_count() == 0
