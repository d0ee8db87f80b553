"""ObjectStorage over one area per kind (uploads, outputs, thumbnails), with the default area behind each.

Writes and signed URLs go to the key's kind's area (infrastructure/storage/layout.py).
Reads on the server side fall back to the default area when the object is missing in
its kind's area: objects written before an operator gave the kind an area of its own
keep working until `genhub storage migrate` has copied them over. Deletes reach both
areas, so a deleted object never reappears from its old place.

A presigned URL names one area, so it cannot fall back: on S3 an old object's URL works
once the migration copied it. The local backend's URLs name no directory (the /files/
route reads through this router), so there they work at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Generic, TypeVar

from domain.errors import NotFound
from domain.object_kinds import Kind, kind_of
from domain.ports import ListedObject, ObjectInfo, ObjectStorage, PresignedRequest, StoredObject
from infrastructure.storage.local import LocalStorage

S = TypeVar("S", bound=ObjectStorage)


class KindRoutedStorage(Generic[S]):
    def __init__(self, *, default: S, areas: Mapping[Kind, S]) -> None:
        self.default = default
        # Only the kinds that have an area of their own; every other key uses the default.
        self.moved: dict[Kind, S] = {kind: area for kind, area in areas.items() if area is not default}
        self.backend_name = default.backend_name

    def area_for(self, key: str) -> S:
        kind = kind_of(key)
        return self.moved.get(kind, self.default) if kind is not None else self.default

    def areas(self) -> list[S]:
        """Every distinct area, the default first."""
        distinct: dict[int, S] = {id(self.default): self.default}
        for area in self.moved.values():
            distinct.setdefault(id(area), area)
        return list(distinct.values())

    # ------------------------------------------------------------ writes: the kind's area

    async def put_stream(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, max_size: int
    ) -> StoredObject:
        return await self.area_for(key).put_stream(key, data, content_type=content_type, max_size=max_size)

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        return await self.area_for(key).put_bytes(key, data, content_type=content_type)

    async def delete(self, key: str) -> None:
        area = self.area_for(key)
        await area.delete(key)
        if area is not self.default:
            await self.default.delete(key)

    # ------------------------------------------------------------ reads: the kind's area, then the default

    async def head(self, key: str) -> ObjectInfo | None:
        area = self.area_for(key)
        info = await area.head(key)
        if info is None and area is not self.default:
            info = await self.default.head(key)
        return info

    async def sha256_of(self, key: str) -> str:
        hasher = hashlib.sha256()
        async for chunk in self.open_read(key):
            hasher.update(chunk)
        return hasher.hexdigest()

    def open_read(self, key: str) -> AsyncIterator[bytes]:
        area = self.area_for(key)
        # Called now, not at the first iteration, so a bad key fails where it is passed.
        first = area.open_read(key)
        if area is self.default:
            return first
        return self._read_falling_back(key, first)

    async def _read_falling_back(self, key: str, first: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            try:
                chunk = await anext(first)
            except StopAsyncIteration:
                return
            except NotFound:
                fallback = self.default.open_read(key)
                try:
                    async for chunk in fallback:
                        yield chunk
                finally:
                    await _close(fallback)
                return
            yield chunk
            async for chunk in first:
                yield chunk
        finally:
            # An early break must release the backend's stream (S3: its pooled connection) now.
            await _close(first)

    # ------------------------------------------------------------ uploads

    async def seal_upload(self, key: str, *, copy_key: str) -> str | None:
        area = self.area_for(key)
        sealed = await area.seal_upload(key, copy_key=copy_key)
        if sealed is None and area is not self.default:
            # PUT through a URL signed before the kind moved: it landed in the default area.
            sealed = await self.default.seal_upload(key, copy_key=copy_key)
        return sealed

    async def unseal_upload(self, key: str, *, sealed_key: str, discard: bool) -> None:
        # Whichever area sealed it; undoing a seal that is not there changes nothing.
        area = self.area_for(key)
        await area.unseal_upload(key, sealed_key=sealed_key, discard=discard)
        if area is not self.default:
            await self.default.unseal_upload(key, sealed_key=sealed_key, discard=discard)

    # ------------------------------------------------------------ signed URLs: the kind's area

    async def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> PresignedRequest:
        return await self.area_for(key).presign_get(key, expires_in=expires_in, filename=filename)

    async def presign_put(
        self, key: str, *, content_type: str, size: int, sha256: str | None, expires_in: int
    ) -> PresignedRequest:
        return await self.area_for(key).presign_put(
            key, content_type=content_type, size=size, sha256=sha256, expires_in=expires_in
        )

    async def check(self) -> None:
        for area in self.areas():
            await area.check()

    async def list_keys(self, prefix: str) -> AsyncIterator[ListedObject]:
        # Every area: an object written before its kind moved may still be in the default one.
        for area in self.areas():
            async for item in area.list_keys(prefix):
                yield item


class RoutedLocalStorage(KindRoutedStorage[LocalStorage]):
    """The local backend's areas, with what the API's signed /files/ and /uploads/ routes need."""

    def verify_download(self, key: str, exp: int, sig: str, name: str | None = None) -> bool:
        return self.area_for(key).verify_download(key, exp, sig, name)

    def verify_upload(self, key: str, exp: int, ct: str, length: int, sha256: str | None, sig: str) -> bool:
        return self.area_for(key).verify_upload(key, exp, ct, length, sha256, sig)

    async def receive_upload(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, size: int, sha256: str | None
    ) -> StoredObject:
        return await self.area_for(key).receive_upload(key, data, content_type=content_type, size=size, sha256=sha256)


async def _close(stream: AsyncIterator[bytes]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
