"""`iso_boxes.box_problem`: an MP4's top-level boxes must tile the file exactly."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.media.iso_boxes import box_problem

KINDS = (b"free", b"mdat", b"moof", b"wide", b"uuid")


def box(kind: bytes, payload_size: int, *, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind, 16 + payload_size) + b"\x00" * payload_size
    return struct.pack(">I4s", 8 + payload_size, kind) + b"\x00" * payload_size


layouts = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(min_value=0, max_value=300), st.booleans()), max_size=6
).map(lambda boxes: [box(b"ftyp", 16), box(b"moov", 40), *(box(k, n, large=large) for k, n, large in boxes)])


def problem_of(data: bytes) -> str | None:
    with tempfile.TemporaryDirectory() as where:
        path = Path(where) / "file.mp4"
        path.write_bytes(data)
        return box_problem(path)


@given(layouts)
def test_boxes_that_tile_the_file_pass(boxes: list[bytes]) -> None:
    assert problem_of(b"".join(boxes)) is None


@given(layouts, st.data())
def test_a_file_cut_inside_a_box_is_found(boxes: list[bytes], data: st.DataObject) -> None:
    # given a cut anywhere but at a box boundary
    whole = b"".join(boxes)
    boundaries = {sum(len(b) for b in boxes[:i]) for i in range(len(boxes) + 1)}
    cut = data.draw(st.integers(min_value=1, max_value=len(whole) - 1).filter(lambda n: n not in boundaries))
    # then the box it falls in is reported
    assert problem_of(whole[:cut]) is not None


def test_a_file_without_its_index_is_found() -> None:
    assert problem_of(box(b"ftyp", 16) + box(b"mdat", 100)) == "no moov box (the file's index is missing)"


def test_impossible_sizes_are_found() -> None:
    assert problem_of(box(b"ftyp", 16) + struct.pack(">I4s", 4, b"moov")) is not None
    assert problem_of(box(b"ftyp", 16) + struct.pack(">I4sQ", 1, b"moov", 8)) is not None


def test_a_last_box_that_runs_to_the_end_passes() -> None:
    assert problem_of(box(b"ftyp", 16) + box(b"moov", 10) + struct.pack(">I4s", 0, b"mdat") + b"\x01" * 50) is None
