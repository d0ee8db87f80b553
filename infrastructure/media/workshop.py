"""`LocalMediaWorkshop`: untrusted media streamed to a private temporary file, then checked.

`spool()` writes the stream to `<temp_dir>/genhub-media-<uuid>.part` (mode 0600), counting
bytes and hashing as it goes. It sniffs the first bytes as soon as it has them and stops
reading at once when the type is not allowed or the size passes `MediaLimits.max_bytes`;
then it probes the whole file (images with Pillow in a thread, videos with ffmpeg in a
subprocess). The file is removed when the context exits, however it exits (errors,
cancellation). Decoding work (probes, thumbnails) holds one of `concurrency` slots, so a
worker process decodes at most that many files at a time. The files of one process hold at
most `spool_budget_bytes` of disk between them (spool_budget.py: a spool waits for its
share); a full disk anyway (ENOSPC, EDQUOT) raises `MediaUnavailable`, retried later. A
thread cannot be stopped: when its caller is cancelled, its slot stays taken until the
thread has really finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ParamSpec, TypeVar

from domain.media import (
    SNIFF_BYTES,
    MediaInfo,
    MediaLimits,
    MediaRejected,
    MediaUnavailable,
    Thumbnail,
    is_video,
    sniff,
)
from infrastructure.media.ffmpeg import DEFAULT_MEMORY_BYTES
from infrastructure.media.images import image_thumbnail, probe_image
from infrastructure.media.spool_budget import SpoolBudget
from infrastructure.media.videos import poster_png, poster_thumbnail, probe_video

#: Bytes gathered before each write to disk (one thread hop per write).
WRITE_BUFFER = 1024 * 1024
READ_CHUNK = 256 * 1024
FILE_PREFIX = "genhub-media-"
#: How long making a thumbnail may take (a poster frame is one seek and one decode).
THUMBNAIL_TIMEOUT_SECONDS = 30.0
#: Disk the spooled files of one process may hold at once unless the caller says otherwise.
DEFAULT_SPOOL_BUDGET_BYTES = 2 * 1024 * 1024 * 1024
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

log = logging.getLogger("genhub.media")

_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Received:
    size: int
    sha256: str
    content_type: str


class LocalMediaWorkshop:
    """Implements `domain.ports.MediaWorkshop` on the local disk of the worker."""

    def __init__(
        self,
        *,
        temp_dir: Path | None = None,
        concurrency: int = 2,
        ffmpeg_memory_bytes: int = DEFAULT_MEMORY_BYTES,
        spool_budget_bytes: int = DEFAULT_SPOOL_BUDGET_BYTES,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.temp_dir = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
        self.temp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.ffmpeg_memory_bytes = ffmpeg_memory_bytes
        self._slots = asyncio.Semaphore(concurrency)
        self.spool_budget = SpoolBudget(spool_budget_bytes)

    @contextlib.asynccontextmanager
    async def spool(self, data: AsyncIterator[bytes], *, limits: MediaLimits) -> AsyncIterator[SpooledFile]:
        async with self.spool_budget.reserved(limits.max_bytes) as reservation:
            path = self.temp_dir / f"{FILE_PREFIX}{uuid.uuid4().hex}.part"
            try:
                with self._disk_full_is_transient():
                    # Created on the event loop on purpose (one quick syscall): created in a thread,
                    # a cancellation could land between the file's creation and our knowing about it.
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
                    # A buffered file, not the bare descriptor: its close() waits for a write still
                    # running in a thread after a cancellation, so the descriptor is never closed
                    # (and its number reused by another file) under that write.
                    with os.fdopen(fd, "wb") as sink:
                        received = await _receive(data, sink, limits)
                reservation.shrink_to(received.size)
                info = await self._probe(path, received.content_type, limits)
                yield SpooledFile(self, path, size=received.size, sha256=received.sha256, info=info)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    @contextlib.contextmanager
    def _disk_full_is_transient(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            log.error(
                "media temp dir %s is full (%s): the output will be retried; size its disk for MEDIA_SPOOL_BUDGET_BYTES",
                self.temp_dir,
                exc.strerror,
            )
            raise MediaUnavailable(f"the media temp dir is full: {exc.strerror}") from None

    async def _probe(self, path: Path, content_type: str, limits: MediaLimits) -> MediaInfo:
        if not is_video(content_type):
            return await self._in_thread(probe_image, path, content_type, limits)
        async with self._slots:
            # A cancelled ffmpeg is killed and waited for before the slot is given back.
            return await probe_video(path, content_type, limits, memory_bytes=self.ffmpeg_memory_bytes)

    async def _in_thread(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """`func` in a thread holding a slot until it returns, even after our caller is cancelled."""
        await self._slots.acquire()
        try:
            work = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
        except BaseException:
            self._slots.release()
            raise
        work.add_done_callback(self._release_after)
        return await asyncio.shield(work)

    def _release_after(self, work: asyncio.Future[Any]) -> None:
        self._slots.release()
        if not work.cancelled():
            work.exception()  # retrieved: a cancelled caller no longer awaits it

    async def _thumbnail(self, path: Path, info: MediaInfo, *, max_side: int, quality: int) -> Thumbnail:
        if not is_video(info.content_type):
            return await self._in_thread(image_thumbnail, path, info.content_type, max_side=max_side, quality=quality)
        async with self._slots:
            png = await poster_png(
                path,
                info,
                time_limit=THUMBNAIL_TIMEOUT_SECONDS,
                memory_bytes=self.ffmpeg_memory_bytes,
                max_side=max_side,
            )
        return await self._in_thread(poster_thumbnail, png, max_side=max_side, quality=quality)


class SpooledFile:
    """Implements `domain.ports.SpooledMedia`: a checked file, valid inside its `spool()` block."""

    def __init__(self, workshop: LocalMediaWorkshop, path: Path, *, size: int, sha256: str, info: MediaInfo) -> None:
        self._workshop = workshop
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.info = info

    async def read(self) -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(self.path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(f.read, READ_CHUNK):
                yield chunk
        finally:
            f.close()

    async def thumbnail(self, *, max_side: int, quality: int) -> Thumbnail:
        return await self._workshop._thumbnail(self.path, self.info, max_side=max_side, quality=quality)


async def _receive(data: AsyncIterator[bytes], sink: BinaryIO, limits: MediaLimits) -> _Received:
    """Stream `data` into `sink`: sniff the head, hash and count the rest, stop at the first excess."""
    digest = hashlib.sha256()
    size = 0
    content_type: str | None = None
    pending: list[bytes] = []
    pending_size = 0
    try:
        async for chunk in data:
            if not chunk:
                continue
            size += len(chunk)
            if size > limits.max_bytes:
                raise MediaRejected("OUTPUT_TOO_LARGE", f"more than {limits.max_bytes} bytes")
            pending.append(chunk)
            pending_size += len(chunk)
            if content_type is None and pending_size >= SNIFF_BYTES:
                content_type = _sniffed(b"".join(pending)[:SNIFF_BYTES])
            if pending_size >= WRITE_BUFFER and content_type is not None:
                await asyncio.to_thread(_write, sink, digest, pending)
                pending, pending_size = [], 0
    finally:
        # Stop the source now (a download stops fetching), not when it is collected.
        aclose = getattr(data, "aclose", None)
        if aclose is not None:
            await aclose()
    if size == 0:
        raise MediaRejected("OUTPUT_EMPTY", "no bytes")
    if content_type is None:
        content_type = _sniffed(b"".join(pending)[:SNIFF_BYTES])
    await asyncio.to_thread(_write, sink, digest, pending)
    return _Received(size=size, sha256=digest.hexdigest(), content_type=content_type)


def _sniffed(head: bytes) -> str:
    content_type = sniff(head)
    if content_type is None:
        raise MediaRejected("OUTPUT_UNSUPPORTED_TYPE", "its bytes are none of the allowed image or video types")
    return content_type


def _write(sink: BinaryIO, digest: hashlib._Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        digest.update(chunk)
        sink.write(chunk)
