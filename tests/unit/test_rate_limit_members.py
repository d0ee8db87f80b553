"""Entry names of the Redis sliding windows: unique in a process, and not repeated by a forked child."""

from __future__ import annotations

import os

from infrastructure.ratelimit import _MEMBERS


def test_names_do_not_repeat_within_a_process() -> None:
    names = [_MEMBERS.next() for _ in range(10_000)]

    assert len(set(names)) == len(names)


def test_a_forked_child_names_its_entries_apart_from_its_parent() -> None:
    # given a parent that has named entries
    parent = _MEMBERS.next()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next name and leave at once
        os.close(read_end)
        os.write(write_end, _MEMBERS.next().encode())
        os._exit(0)
    os.close(write_end)
    try:
        child = os.read(read_end, 200).decode()
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    # then the child's names share neither the parent's prefix nor its sequence
    assert child and child.split(":")[0] != parent.split(":")[0]
    assert _MEMBERS.next().split(":")[0] == parent.split(":")[0]
