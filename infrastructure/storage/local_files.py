"""Filesystem steps of the local storage: safe object keys, durable temp-file writes, OSError as StorageUnavailable."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiofiles

from domain.errors import ObjectTooLarge, StorageUnavailable

_KEY_RE = re.compile(r"^[A-Za-z0-9_./-]+$")


def validate_key(key: str) -> None:
    """Raise ValueError unless `key` is a safe relative object key.

    Stricter than the character set alone: besides `..`, empty segments and
    segments starting with a dot are refused, which keeps keys away from the
    temp files and the `.meta` sidecar tree that live under the same root.
    """
    if not _KEY_RE.match(key) or key.startswith("/"):
        raise ValueError(f"invalid object key: {key!r}")
    if any(segment == "" or segment.startswith(".") for segment in key.split("/")):
        raise ValueError(f"invalid object key: {key!r}")


async def write_temp(tmp: Path, data: AsyncIterator[bytes], *, max_size: int) -> tuple[int, str]:
    """Write `data` to a new file `tmp`, durably; (size, sha256). ObjectTooLarge past `max_size`."""
    hasher = hashlib.sha256()
    size = 0
    async with aiofiles.open(tmp, "xb") as out:
        async for chunk in data:
            size += len(chunk)
            if size > max_size:
                raise ObjectTooLarge(max_size)
            hasher.update(chunk)
            await out.write(chunk)
        await out.flush()
        # Durable before visible: the rename must never expose a half-written file.
        await asyncio.to_thread(os.fsync, out.fileno())
    return size, hasher.hexdigest()


def valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except ValueError:
        return False
    return True


def temp_path(path: Path) -> Path:
    # Same directory as the target so os.replace is an atomic rename on one filesystem.
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def discard_file(path: Path) -> None:
    # Synchronous on purpose: it also runs while a cancellation is propagating.
    with contextlib.suppress(OSError):
        path.unlink()


@contextlib.contextmanager
def unavailable_on_oserror() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(f"local storage failed: {exc.strerror or exc}") from exc
