"""A MediaWorkshop for the unit tests: the real `sniff` and byte limit, geometry and decoding from markers.

A spooled file is the bytes in memory (test files are small). Besides what `sniff` and
`MediaLimits.max_bytes` decide, bytes containing:
- `TRUNCATED` are refused as OUTPUT_TRUNCATED on arrival,
- `BOMB` as OUTPUT_TOO_MANY_PIXELS,
- `UNDECODABLE` pass the probe but fail when thumbnailed (OUTPUT_TRUNCATED),
- `UNCHECKABLE` cannot be probed now (`MediaUnavailable`: a decoder killed, a full disk),
- `<W>x<H>` (e.g. `1024x768`) give their geometry (else 640x480).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from domain.media import (
    SNIFF_BYTES,
    THUMBNAIL_TYPE,
    MediaInfo,
    MediaLimits,
    MediaRejected,
    MediaUnavailable,
    Thumbnail,
    is_video,
    sniff,
)

_GEOMETRY = re.compile(rb"(\d{1,5})x(\d{1,5})")


@dataclass
class FakeSpooled:
    body: bytes
    info: MediaInfo
    size: int = 0
    sha256: str = ""

    def __post_init__(self) -> None:
        self.size = len(self.body)
        self.sha256 = hashlib.sha256(self.body).hexdigest()

    async def read(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 5):
            await asyncio.sleep(0)  # lets concurrent workers interleave, as real I/O does
            yield self.body[start : start + 5]

    async def thumbnail(self, *, max_side: int, quality: int) -> Thumbnail:
        if b"UNDECODABLE" in self.body:
            raise MediaRejected("OUTPUT_TRUNCATED", "the picture data does not decode")
        scale = min(1.0, max_side / max(self.info.width, self.info.height))
        width, height = max(1, round(self.info.width * scale)), max(1, round(self.info.height * scale))
        data = b"RIFF\x00\x00\x00\x00WEBPVP8 " + f"{width}x{height} q{quality} of ".encode() + self.sha256.encode()
        return Thumbnail(data, THUMBNAIL_TYPE, width, height)


@dataclass
class FakeMediaWorkshop:
    spooled: int = 0  # files received
    open: int = 0  # files on "disk" right now (leaving a spool deletes its file)
    limits_seen: list[MediaLimits] = field(default_factory=list)
    # When set, probing each file after the first `free` ones waits for it (a slow decoder),
    # after setting `probing`.
    gate: asyncio.Event | None = None
    free: int = 0
    probing: asyncio.Event = field(default_factory=asyncio.Event)

    @contextlib.asynccontextmanager
    async def spool(self, data: AsyncIterator[bytes], *, limits: MediaLimits) -> AsyncIterator[FakeSpooled]:
        self.limits_seen.append(limits)
        body = b""
        async for part in data:
            await asyncio.sleep(0)
            body += part
            if len(body) > limits.max_bytes:
                raise MediaRejected("OUTPUT_TOO_LARGE", f"more than {limits.max_bytes} bytes")
        self.spooled += 1
        self.open += 1
        try:
            if self.gate is not None and self.spooled > self.free:
                self.probing.set()
                await self.gate.wait()
            yield FakeSpooled(body, self._probe(body))
        finally:
            self.open -= 1

    def _probe(self, body: bytes) -> MediaInfo:
        if not body:
            raise MediaRejected("OUTPUT_EMPTY", "no bytes")
        content_type = sniff(body[:SNIFF_BYTES])
        if content_type is None:
            raise MediaRejected("OUTPUT_UNSUPPORTED_TYPE", "not an image or video we store")
        if b"UNCHECKABLE" in body:
            raise MediaUnavailable("ffmpeg was killed by signal 9")
        if b"TRUNCATED" in body:
            raise MediaRejected("OUTPUT_TRUNCATED", "ends early")
        if b"BOMB" in body:
            raise MediaRejected("OUTPUT_TOO_MANY_PIXELS", "declares too many pixels")
        found = _GEOMETRY.search(body)
        width, height = (int(found[1]), int(found[2])) if found else (640, 480)
        return MediaInfo(content_type, width, height, 4.0 if is_video(content_type) else None)
