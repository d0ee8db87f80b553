"""Best-effort storage undo steps, run while another error (or a cancellation) propagates."""

from __future__ import annotations

import asyncio
import contextlib

from domain.chunks import Chunk
from domain.ports import ObjectStorage


async def discard(storage: ObjectStorage, key: str) -> None:
    """Delete `key`; shielded so a cancellation does not stop it halfway, and never raising."""
    with contextlib.suppress(Exception):
        await asyncio.shield(storage.delete(key))


async def unseal(storage: ObjectStorage, chunk: Chunk, sealed_key: str, *, discard: bool) -> None:
    """Undo `ObjectStorage.seal_upload` for `chunk` (dropping the bytes when `discard`), like `discard`: shielded."""
    with contextlib.suppress(Exception):
        await asyncio.shield(storage.unseal_upload(chunk.object_key, sealed_key=sealed_key, discard=discard))
