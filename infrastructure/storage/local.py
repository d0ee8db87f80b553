"""ObjectStorage on a local directory (the embedded default, also a persistent disk).

Objects are plain files under `root`; their content type lives in a sidecar
file under `root/.meta/`. Downloads and uploads go through signed, expiring
URLs served by the API's `/files/` and `/uploads/` routes, which check them
with `verify_download` / `verify_upload`; an upload URL is single-use: once
completion has sealed its key, `receive_upload` refuses it (see
`infrastructure.storage.upload_seals` for why that is race-free).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import aiofiles
import aiofiles.os

from domain.errors import NotFound
from domain.ports import ListedObject, ObjectInfo, PresignedRequest, StoredObject
from infrastructure.storage.download_headers import attachment_name
from infrastructure.storage.local_files import (
    discard_file,
    temp_path,
    unavailable_on_oserror,
    valid_key,
    validate_key,
    write_temp,
)
from infrastructure.storage.local_sidecars import ContentTypeSidecars
from infrastructure.storage.upload_seals import UploadSealed, UploadSeals
from infrastructure.storage.url_signing import UrlSigner

READ_CHUNK_SIZE = 1024 * 1024
_META_DIR = ".meta"


class LocalStorage:
    backend_name: str = "local"

    def __init__(self, root: Path, public_base_url: str, secret: str, *, others: Iterable[Path] = ()) -> None:
        # Resolve once so the containment check below compares canonical paths.
        self._root = root.resolve()
        # The other areas' directories: listing never walks into one (layout.py refuses nesting;
        # this keeps another area's files from being listed here under a wrong key regardless).
        self._others = frozenset(other.resolve() for other in others) - {self._root}
        self._base_url = public_base_url.rstrip("/")
        self._signer = UrlSigner(secret)
        self._seals = UploadSeals(self._root / _META_DIR)
        self._sidecars = ContentTypeSidecars(self._root / _META_DIR)

    @property
    def root(self) -> Path:
        return self._root

    @property
    def area(self) -> str:
        """The area's name for operators: its directory."""
        return str(self._root)

    # ------------------------------------------------------------ writes

    async def put_stream(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, max_size: int
    ) -> StoredObject:
        path = self._path(key)
        with unavailable_on_oserror():
            await aiofiles.os.makedirs(path.parent, exist_ok=True)
            tmp = temp_path(path)
            try:
                size, sha256 = await write_temp(tmp, data, max_size=max_size)
                await aiofiles.os.replace(tmp, path)
            except BaseException:
                # BaseException: a cancelled upload must not leave its temp file behind either.
                discard_file(tmp)
                raise
            await self._sidecars.write(key, content_type)
        return StoredObject(key=key, size=size, sha256=sha256, content_type=content_type)

    async def receive_upload(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, size: int, sha256: str | None
    ) -> StoredObject:
        """Store the body of a signed PUT under `key`, unless a completion has sealed the key.

        Raises UploadSealed when it has, UploadMismatch when the body is not the
        signed length or checksum (nothing replaced then), ObjectTooLarge when it
        runs past `size`.
        """
        path = self._path(key)
        with unavailable_on_oserror():
            if await aiofiles.os.path.exists(self._seals.marker(key)):
                # An early answer that spares the body; the check that counts runs under the lock.
                raise UploadSealed(key)
            await aiofiles.os.makedirs(path.parent, exist_ok=True)
            tmp = temp_path(path)
            try:
                written, digest = await write_temp(tmp, data, max_size=size)
                if written != size or (sha256 is not None and digest != sha256.lower()):
                    raise UploadMismatch(key)
                meta = functools.partial(self._sidecars.write_now, key, content_type)
                await asyncio.to_thread(self._seals.publish, key, tmp, path, meta)
            except BaseException:
                discard_file(tmp)
                raise
        return StoredObject(key=key, size=written, sha256=digest, content_type=content_type)

    async def seal_upload(self, key: str, *, copy_key: str) -> str | None:
        # The key itself stays the object: after the seal no PUT can rename onto it.
        path = self._path(key)
        with unavailable_on_oserror():
            sealed = await asyncio.to_thread(self._seals.seal, key, path)
        return key if sealed else None

    async def unseal_upload(self, key: str, *, sealed_key: str, discard: bool) -> None:
        path = self._path(key)
        with unavailable_on_oserror():
            await asyncio.to_thread(
                self._seals.unseal, key, functools.partial(self._remove, key, path) if discard else None
            )

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        async def one_chunk() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(key, one_chunk(), content_type=content_type, max_size=len(data))

    async def delete(self, key: str) -> None:
        path = self._path(key)
        with unavailable_on_oserror():
            # The seal marker last: until the object is gone its key must not take a PUT again.
            for target in (path, self._sidecars.path(key), self._seals.marker(key)):
                with contextlib.suppress(FileNotFoundError):
                    await aiofiles.os.remove(target)

    # ------------------------------------------------------------ reads

    async def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        with unavailable_on_oserror():
            try:
                stat = await aiofiles.os.stat(path)
            except FileNotFoundError:
                return None
            return ObjectInfo(key=key, size=stat.st_size, content_type=await self._sidecars.read(key))

    async def sha256_of(self, key: str) -> str:
        hasher = hashlib.sha256()
        async for chunk in self.open_read(key):
            hasher.update(chunk)
        return hasher.hexdigest()

    def open_read(self, key: str) -> AsyncIterator[bytes]:
        # Validate now, not at the first iteration, so a bad key fails where it is passed.
        return self._read_file(key, self._path(key))

    async def _read_file(self, key: str, path: Path) -> AsyncIterator[bytes]:
        with unavailable_on_oserror():
            try:
                handle = await aiofiles.open(path, "rb")
            except FileNotFoundError:
                raise NotFound("object", f"object {key!r} does not exist") from None
            try:
                while chunk := await handle.read(READ_CHUNK_SIZE):
                    yield chunk
            finally:
                await handle.close()

    # ------------------------------------------------------------ signed URLs

    async def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> PresignedRequest:
        validate_key(key)
        exp = self._signer.expiry(expires_in)
        name = attachment_name(key, filename)
        query: dict[str, str | int] = {"exp": exp, "sig": self._signer.download_signature(key, exp, name)}
        if name is not None:
            query["name"] = name
        return PresignedRequest(
            url=f"{self._base_url}/files/{quote(key, safe='/')}?{urlencode(query)}",
            method="GET",
            headers={},
            expires_at=datetime.fromtimestamp(exp, tz=UTC),
        )

    async def presign_put(
        self, key: str, *, content_type: str, size: int, sha256: str | None, expires_in: int
    ) -> PresignedRequest:
        validate_key(key)
        exp = self._signer.expiry(expires_in)
        sig = self._signer.upload_signature(key, exp, content_type, size, sha256)
        query = urlencode({"exp": exp, "ct": content_type, "len": size, "sig": sig})
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        if sha256:
            headers["X-Checksum-Sha256"] = sha256.lower()
        return PresignedRequest(
            url=f"{self._base_url}/uploads/{quote(key, safe='/')}?{query}",
            method="PUT",
            headers=headers,
            expires_at=datetime.fromtimestamp(exp, tz=UTC),
        )

    def verify_download(self, key: str, exp: int, sig: str, name: str | None = None) -> bool:
        """True when `sig` was issued by presign_get for this key, expiry and filename and has not expired."""
        return valid_key(key) and self._signer.verify_download(key, exp, sig, name)

    def verify_upload(self, key: str, exp: int, ct: str, length: int, sha256: str | None, sig: str) -> bool:
        """True when `sig` was issued by presign_put for exactly these values and has not expired.

        Pass the request's own Content-Type, Content-Length and X-Checksum-Sha256
        header values: a client that changed any of them then fails here.
        """
        return valid_key(key) and self._signer.verify_upload(key, exp, ct, length, sha256, sig)

    # ------------------------------------------------------------ health

    async def check(self) -> None:
        with unavailable_on_oserror():
            await aiofiles.os.makedirs(self._root, exist_ok=True)
            probe = self._root / f".probe-{uuid.uuid4().hex}"
            async with aiofiles.open(probe, "xb") as out:
                await out.write(b"ok")
            await aiofiles.os.remove(probe)

    # ------------------------------------------------------------ moving a kind between directories

    async def list_keys(self, prefix: str) -> AsyncIterator[ListedObject]:
        with unavailable_on_oserror():
            found = await asyncio.to_thread(self._list_stat, prefix)
        for item in found:
            yield item

    async def keys(self, prefix: str) -> AsyncIterator[tuple[str, int]]:
        """(key, size) of every object whose key starts with `prefix` (a whole first segment and `/`)."""
        with unavailable_on_oserror():
            found = await asyncio.to_thread(self._list, prefix)
        for item in found:
            yield item

    async def copy_from(self, source: LocalStorage, key: str) -> None:
        """Copy `key` from `source`'s directory into this one: bytes, content type, and its upload seal.

        The seal goes first: a READY chunk's key never takes a PUT here either, not even
        between the copy's rename and its seal.
        """
        info = await source.head(key)
        if info is None:
            raise NotFound("object", f"object {key!r} does not exist")
        await self.copy_seal(source, key)
        await self.put_stream(
            key,
            source.open_read(key),
            content_type=info.content_type or "application/octet-stream",
            max_size=info.size,
        )

    async def copy_seal(self, source: LocalStorage, key: str) -> None:
        """Seal `key` here too when `source` sealed it (a READY chunk's key takes no PUT anywhere)."""
        with unavailable_on_oserror():
            if await source.sealed(key) and not await self.sealed(key):
                await asyncio.to_thread(self._seals.mark, key)

    async def sealed(self, key: str) -> bool:
        validate_key(key)
        return await aiofiles.os.path.exists(self._seals.marker(key))

    def _list(self, prefix: str) -> list[tuple[str, int]]:
        return sorted((item.key, item.size) for item in self._list_stat(prefix))

    def _list_stat(self, prefix: str) -> list[ListedObject]:
        top = self._root / prefix.rstrip("/")
        found: list[ListedObject] = []
        for directory, subdirs, files in os.walk(top):
            if Path(directory) in self._others:
                subdirs[:] = []
                continue
            # Temp files and the .meta tree start with a dot; no key has such a segment.
            subdirs[:] = [d for d in subdirs if not d.startswith(".")]
            for name in files:
                path = Path(directory, name)
                key = path.relative_to(self._root).as_posix()
                if key.startswith(prefix) and valid_key(key) and not path.is_symlink():
                    try:
                        stat = path.stat()
                    except FileNotFoundError:
                        continue  # deleted while listing
                    modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                    found.append(ListedObject(key=key, size=stat.st_size, modified=modified))
        return found

    # ------------------------------------------------------------ helpers

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = (self._root / key).resolve()
        # Defence in depth: the key rules already forbid escapes, but a symlink inside root must not either.
        if path == self._root or not path.is_relative_to(self._root):
            raise ValueError(f"object key escapes the storage root: {key!r}")
        return path

    def _remove(self, key: str, path: Path) -> None:
        for target in (path, self._sidecars.path(key)):
            with contextlib.suppress(FileNotFoundError):
                target.unlink()


class UploadMismatch(Exception):
    """A PUT body whose length or SHA-256 differs from the signed values; nothing was stored."""
