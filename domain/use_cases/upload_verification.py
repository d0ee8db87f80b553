"""Whether the bytes a client uploaded are the ones it announced: size, content type, sha256."""

from __future__ import annotations

import hashlib

from domain.chunks import Chunk, normalize_content_type
from domain.errors import InvalidInput, InvalidState
from domain.ports import ObjectInfo, ObjectStorage


def _mismatch(chunk: Chunk, info: ObjectInfo) -> tuple[str, str] | None:
    if info.size != chunk.size:
        return "size", f"the uploaded file has {info.size} bytes, {chunk.size} were announced"
    # Real S3 enforces the signed Content-Type; some compatible stores do not, so check it here too.
    if info.content_type is not None and normalize_content_type(info.content_type) != chunk.content_type:
        return "contentType", f"the file was uploaded as {info.content_type}, not {chunk.content_type}"
    return None


async def _measure(storage: ObjectStorage, key: str) -> tuple[int, str]:
    """(size, sha256) of the object in one read, so both describe the same bytes."""
    hasher = hashlib.sha256()
    size = 0
    async for data in storage.open_read(key):
        size += len(data)
        hasher.update(data)
    return size, hasher.hexdigest()


async def verified(chunk: Chunk, storage: ObjectStorage, sealed_key: str) -> tuple[int, str]:
    """Size and sha256 of the sealed object, or InvalidInput naming what differs from the announcement."""
    info = await storage.head(sealed_key)
    if info is None:
        raise InvalidState("The file has not been uploaded yet: PUT it to the upload URL first.")
    problem = _mismatch(chunk, info)
    if problem is not None:
        raise InvalidInput.single(*problem)
    size, sha256 = await _measure(storage, sealed_key)
    if size != chunk.size:
        raise InvalidInput.single("size", f"the uploaded file has {size} bytes, {chunk.size} were announced")
    if chunk.sha256 is not None and sha256 != chunk.sha256:
        raise InvalidInput.single("sha256", "the uploaded file does not match the announced checksum")
    return size, sha256
