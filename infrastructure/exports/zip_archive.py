"""ZIP archives written to the worker's disk (the ArchiveWriter port), member by member, never whole in memory.

Each archive lives in a temporary directory of its own (MEDIA_TEMP_DIR, else the system's):
the ZIP itself and the spool files of the JSON lists still open. Blocking file work runs on a
thread, one step at a time; a step already on its thread when the build is cancelled is
waited for before the files are closed and deleted. Member names are checked again here
(`domain.data_exports.is_safe_member`): a name that could leave the unpack directory is a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from domain.data_exports import ArchiveTooLarge, is_safe_member

T = TypeVar("T")
READ_SIZE = 1024 * 1024
#: Media is compressed already: files are stored, JSON and text deflated.
TEXT_COMPRESSION = zipfile.ZIP_DEFLATED


class _Steps:
    """Runs blocking steps on a thread, one at a time; `drain` waits for one left running by a cancellation."""

    def __init__(self) -> None:
        self._pending: asyncio.Future[Any] | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        future: asyncio.Future[T] = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._pending = future
        return await asyncio.shield(future)

    async def drain(self) -> None:
        if self._pending is not None and not self._pending.done():
            with contextlib.suppress(Exception):
                await self._pending


class _SpooledList:
    """A JSON array on disk, one item at a time."""

    def __init__(self, handle: IO[bytes], steps: _Steps) -> None:
        self._handle = handle
        self._steps = steps
        self._count = 0

    async def append(self, item: Mapping[str, Any]) -> None:
        text = ("[\n  " if self._count == 0 else ",\n  ") + json.dumps(item, ensure_ascii=False, default=str)
        self._count += 1
        await self._steps.run(self._handle.write, text.encode())

    async def finish(self) -> None:
        await self._steps.run(self._handle.write, b"\n]\n" if self._count else b"[]\n")
        await self._steps.run(self._handle.close)


class ZipArchiveWriter:
    def __init__(self, directory: Path, *, max_size: int) -> None:
        self.directory = directory
        self.path = directory / "archive.zip"
        self.max_size = max_size
        self._steps = _Steps()
        self._raw = self.path.open("wb")
        self._zip = zipfile.ZipFile(self._raw, "w", allowZip64=True)
        self._closed = False
        self._spools = 0
        self._stamp = datetime.now(UTC).timetuple()[:6]

    def _info(self, name: str, compression: int) -> zipfile.ZipInfo:
        if not is_safe_member(name):
            raise ValueError(f"unsafe archive member name: {name!r}")
        info = zipfile.ZipInfo(name, date_time=self._stamp)
        info.compress_type = compression
        info.external_attr = 0o644 << 16
        return info

    def _check_size(self) -> None:
        if self._raw.tell() > self.max_size:
            raise ArchiveTooLarge(self.max_size)

    async def add_text(self, name: str, text: str) -> None:
        await self._add_bytes(name, text.encode())

    async def add_json(self, name: str, document: Any) -> None:
        await self._add_bytes(name, (json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n").encode())

    async def _add_bytes(self, name: str, data: bytes) -> None:
        info = self._info(name, TEXT_COMPRESSION)
        await self._steps.run(self._zip.writestr, info, data)
        self._check_size()

    @contextlib.asynccontextmanager
    async def json_list(self, name: str) -> AsyncIterator[_SpooledList]:
        self._info(name, TEXT_COMPRESSION)  # refuse a bad name before any work
        self._spools += 1
        spool_path = self.directory / f"list-{self._spools}.json"
        spooled = _SpooledList(await self._steps.run(lambda: spool_path.open("wb")), self._steps)
        try:
            yield spooled
            await spooled.finish()
            await self._add_stream(name, self._read_file(spool_path), TEXT_COMPRESSION)
        finally:
            await self._steps.drain()
            with contextlib.suppress(OSError):
                spool_path.unlink()

    async def add_file(self, name: str, data: AsyncIterator[bytes]) -> int:
        return await self._add_stream(name, data, zipfile.ZIP_STORED)

    async def _add_stream(self, name: str, data: AsyncIterator[bytes], compression: int) -> int:
        info = self._info(name, compression)
        try:
            first: bytes | None = await anext(data)
        except StopAsyncIteration:
            first = None
        handle = await self._steps.run(lambda: self._zip.open(info, "w", force_zip64=True))
        written = 0
        try:
            if first:
                await self._steps.run(handle.write, first)
                written += len(first)
                self._check_size()
            async for chunk in data:
                await self._steps.run(handle.write, chunk)
                written += len(chunk)
                self._check_size()
        finally:
            await self._steps.drain()
            await self._steps.run(handle.close)
        return written

    async def _read_file(self, path: Path) -> AsyncIterator[bytes]:
        handle: IO[bytes] = await self._steps.run(lambda: path.open("rb"))
        try:
            while chunk := await self._steps.run(handle.read, READ_SIZE):
                yield chunk
        finally:
            await self._steps.drain()
            handle.close()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._steps.drain()
            await self._steps.run(self._zip.close)
            await self._steps.run(self._raw.close)

    async def read(self) -> AsyncIterator[bytes]:
        await self.close()
        if self.path.stat().st_size > self.max_size:
            raise ArchiveTooLarge(self.max_size)
        async for chunk in self._read_file(self.path):
            yield chunk

    async def discard(self) -> None:
        await self._steps.drain()
        with contextlib.suppress(Exception):
            if not self._closed:
                self._closed = True
                self._raw.close()


class ZipArchives:
    """Makes each archive in a new temporary directory under `temp_dir` (None: the system's)."""

    def __init__(self, temp_dir: Path | None = None) -> None:
        self.temp_dir = temp_dir

    @contextlib.asynccontextmanager
    async def create(self, *, max_size: int) -> AsyncIterator[ZipArchiveWriter]:
        if self.temp_dir is not None:
            await asyncio.to_thread(self.temp_dir.mkdir, parents=True, exist_ok=True)
        directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="genhub-export-", dir=self.temp_dir))
        writer = ZipArchiveWriter(directory, max_size=max_size)
        try:
            yield writer
        finally:
            await writer.discard()
            await asyncio.to_thread(shutil.rmtree, directory, True)
