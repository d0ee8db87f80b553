"""A tiny standard-library PNG encoder and a deterministic picture for the simulated provider."""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE_RGB = 2
_BIT_DEPTH = 8


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(width: int, height: int, rgb_rows: list[bytes]) -> bytes:
    """Encode 8-bit RGB rows (each `3 * width` bytes, top to bottom) as a PNG file."""
    if width <= 0 or height <= 0:
        raise ValueError("width and height must be positive")
    if len(rgb_rows) != height or any(len(row) != 3 * width for row in rgb_rows):
        raise ValueError("rgb_rows must hold `height` rows of `3 * width` bytes")
    header = struct.pack(">IIBBBBB", width, height, _BIT_DEPTH, _COLOR_TYPE_RGB, 0, 0, 0)
    # Filter type 0 (None) before every scanline.
    raw = b"".join(b"\x00" + row for row in rgb_rows)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")


@lru_cache(maxsize=64)
def render_png(seed: str, *, width: int = 256, height: int = 256) -> bytes:
    """A gradient with rings whose colours and geometry derive from `sha256(seed)`.

    The same seed always gives the same bytes, so a prompt maps to one picture.
    """
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    base_r, base_g, base_b = digest[0], digest[1], digest[2]
    cx = digest[3] % width
    cy = digest[4] % height
    ring = 8 + digest[5] % 24
    stripe = 4 + digest[6] % 28
    xs = range(width)
    # Per column terms are computed once; each row then only mixes in its own term.
    red_cols = [base_r // 2 + 127 * x // max(1, width - 1) for x in xs]
    dx2 = [(x - cx) * (x - cx) for x in xs]
    rows: list[bytes] = []
    for y in range(height):
        green = base_g // 2 + 127 * y // max(1, height - 1)
        dy2 = (y - cy) * (y - cy)
        row = bytearray(3 * width)
        for x in xs:
            on_ring = (int((dx2[x] + dy2) ** 0.5) // ring) % 2 == 0
            on_stripe = ((x + y) // stripe) % 2 == 0
            offset = 3 * x
            row[offset] = red_cols[x]
            row[offset + 1] = green ^ 0x40 if on_stripe else green
            row[offset + 2] = base_b if on_ring else 255 - base_b
        rows.append(bytes(row))
    return encode_png(width, height, rows)
