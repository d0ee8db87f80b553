"""The top-level boxes of an ISO base media file (MP4, QuickTime): do their sizes add up?

A cut MP4 is recognisable without decoding: its last top-level box declares more bytes
than the file holds (or its header itself is cut). Only box headers are read, with seeks.
"""

from __future__ import annotations

import struct
from pathlib import Path

#: A file with more top-level boxes than this is refused (a fragmented MP4 has two per
#: fragment; walking millions of tiny boxes would be a cheap way to occupy a worker).
MAX_TOP_LEVEL_BOXES = 100_000


def box_problem(path: Path) -> str | None:
    """Why the top-level boxes do not tile the file exactly, or None when they do."""
    size = path.stat().st_size
    seen_moov = False
    with path.open("rb") as f:
        offset = 0
        for _ in range(MAX_TOP_LEVEL_BOXES):
            if offset == size:
                return None if seen_moov else "no moov box (the file's index is missing)"
            if size - offset < 8:
                return f"a box header is cut at offset {offset}"
            f.seek(offset)
            box_size, kind = struct.unpack(">I4s", f.read(8))
            header = 8
            if box_size == 1:  # a 64-bit size follows the type
                if size - offset < 16:
                    return f"a box header is cut at offset {offset}"
                (box_size,) = struct.unpack(">Q", f.read(8))
                header = 16
            elif box_size == 0:  # "extends to the end of the file": only the last box may say so
                box_size = size - offset
            if box_size < header:
                return f"box {kind!r} at offset {offset} declares an impossible size {box_size}"
            if offset + box_size > size:
                return f"box {kind!r} at offset {offset} needs {offset + box_size - size} more bytes"
            seen_moov = seen_moov or kind == b"moov"
            offset += box_size
    return f"more than {MAX_TOP_LEVEL_BOXES} top-level boxes"
