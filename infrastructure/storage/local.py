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
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import aiofiles
import aiofiles.os

from domain.errors import NotFound, ObjectTooLarge, StorageUnavailable
from domain.ports import ObjectInfo, PresignedRequest, StoredObject
from infrastructure.storage.upload_seals import UploadSealed, UploadSeals
from infrastructure.storage.url_signing import UrlSigner

READ_CHUNK_SIZE = 1024 * 1024
_KEY_RE = re.compile(r"^[A-Za-z0-9_./-]+$")
_META_DIR = ".meta"


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


class LocalStorage:
    backend_name: str = "local"

    def __init__(self, root: Path, public_base_url: str, secret: str) -> None:
        # Resolve once so the containment check below compares canonical paths.
        self._root = root.resolve()
        self._base_url = public_base_url.rstrip("/")
        self._signer = UrlSigner(secret)
        self._seals = UploadSeals(self._root / _META_DIR)

    @property
    def root(self) -> Path:
        return self._root

    # ------------------------------------------------------------ writes

    async def put_stream(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, max_size: int
    ) -> StoredObject:
        path = self._path(key)
        with _unavailable_on_oserror():
            await aiofiles.os.makedirs(path.parent, exist_ok=True)
            tmp = _temp_path(path)
            try:
                size, sha256 = await _write_temp(tmp, data, max_size=max_size)
                await aiofiles.os.replace(tmp, path)
            except BaseException:
                # BaseException: a cancelled upload must not leave its temp file behind either.
                _discard(tmp)
                raise
            await self._write_meta(key, content_type)
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
        with _unavailable_on_oserror():
            if await aiofiles.os.path.exists(self._seals.marker(key)):
                # An early answer that spares the body; the check that counts runs under the lock.
                raise UploadSealed(key)
            await aiofiles.os.makedirs(path.parent, exist_ok=True)
            tmp = _temp_path(path)
            try:
                written, digest = await _write_temp(tmp, data, max_size=size)
                if written != size or (sha256 is not None and digest != sha256.lower()):
                    raise UploadMismatch(key)
                meta = functools.partial(self._write_meta_now, key, content_type)
                await asyncio.to_thread(self._seals.publish, key, tmp, path, meta)
            except BaseException:
                _discard(tmp)
                raise
        return StoredObject(key=key, size=written, sha256=digest, content_type=content_type)

    async def seal_upload(self, key: str, *, copy_key: str) -> str | None:
        # The key itself stays the object: after the seal no PUT can rename onto it.
        path = self._path(key)
        with _unavailable_on_oserror():
            sealed = await asyncio.to_thread(self._seals.seal, key, path)
        return key if sealed else None

    async def unseal_upload(self, key: str, *, sealed_key: str, discard: bool) -> None:
        path = self._path(key)
        with _unavailable_on_oserror():
            await asyncio.to_thread(
                self._seals.unseal, key, functools.partial(self._remove, key, path) if discard else None
            )

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        async def one_chunk() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(key, one_chunk(), content_type=content_type, max_size=len(data))

    async def delete(self, key: str) -> None:
        path = self._path(key)
        with _unavailable_on_oserror():
            # The seal marker last: until the object is gone its key must not take a PUT again.
            for target in (path, self._meta_path(key), self._seals.marker(key)):
                with contextlib.suppress(FileNotFoundError):
                    await aiofiles.os.remove(target)

    # ------------------------------------------------------------ reads

    async def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        with _unavailable_on_oserror():
            try:
                stat = await aiofiles.os.stat(path)
            except FileNotFoundError:
                return None
            return ObjectInfo(key=key, size=stat.st_size, content_type=await self._read_meta(key))

    async def sha256_of(self, key: str) -> str:
        hasher = hashlib.sha256()
        async for chunk in self.open_read(key):
            hasher.update(chunk)
        return hasher.hexdigest()

    def open_read(self, key: str) -> AsyncIterator[bytes]:
        # Validate now, not at the first iteration, so a bad key fails where it is passed.
        return self._read_file(key, self._path(key))

    async def _read_file(self, key: str, path: Path) -> AsyncIterator[bytes]:
        with _unavailable_on_oserror():
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
        query: dict[str, str | int] = {"exp": exp, "sig": self._signer.download_signature(key, exp, filename)}
        if filename is not None:
            query["name"] = filename
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
        return _valid_key(key) and self._signer.verify_download(key, exp, sig, name)

    def verify_upload(self, key: str, exp: int, ct: str, length: int, sha256: str | None, sig: str) -> bool:
        """True when `sig` was issued by presign_put for exactly these values and has not expired.

        Pass the request's own Content-Type, Content-Length and X-Checksum-Sha256
        header values: a client that changed any of them then fails here.
        """
        return _valid_key(key) and self._signer.verify_upload(key, exp, ct, length, sha256, sig)

    # ------------------------------------------------------------ health

    async def check(self) -> None:
        with _unavailable_on_oserror():
            await aiofiles.os.makedirs(self._root, exist_ok=True)
            probe = self._root / f".probe-{uuid.uuid4().hex}"
            async with aiofiles.open(probe, "xb") as out:
                await out.write(b"ok")
            await aiofiles.os.remove(probe)

    # ------------------------------------------------------------ helpers

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = (self._root / key).resolve()
        # Defence in depth: the key rules already forbid escapes, but a symlink inside root must not either.
        if path == self._root or not path.is_relative_to(self._root):
            raise ValueError(f"object key escapes the storage root: {key!r}")
        return path

    def _meta_path(self, key: str) -> Path:
        return self._root / _META_DIR / f"{key}.json"

    def _remove(self, key: str, path: Path) -> None:
        for target in (path, self._meta_path(key)):
            with contextlib.suppress(FileNotFoundError):
                target.unlink()

    def _write_meta_now(self, key: str, content_type: str) -> None:
        # Blocking twin of _write_meta, for the upload lock's critical section (which runs in a thread).
        path = self._meta_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_path(path)
        try:
            tmp.write_text(json.dumps({"content_type": content_type}), encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:
            _discard(tmp)
            raise

    async def _write_meta(self, key: str, content_type: str) -> None:
        path = self._meta_path(key)
        await aiofiles.os.makedirs(path.parent, exist_ok=True)
        tmp = _temp_path(path)
        try:
            async with aiofiles.open(tmp, "x", encoding="utf-8") as out:
                await out.write(json.dumps({"content_type": content_type}))
            await aiofiles.os.replace(tmp, path)
        except BaseException:
            _discard(tmp)
            raise

    async def _read_meta(self, key: str) -> str | None:
        try:
            async with aiofiles.open(self._meta_path(key), encoding="utf-8") as handle:
                meta = json.loads(await handle.read())
        except (FileNotFoundError, ValueError):
            return None
        content_type = meta.get("content_type") if isinstance(meta, dict) else None
        return content_type if isinstance(content_type, str) else None


class UploadMismatch(Exception):
    """A PUT body whose length or SHA-256 differs from the signed values; nothing was stored."""


async def _write_temp(tmp: Path, data: AsyncIterator[bytes], *, max_size: int) -> tuple[int, str]:
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


def _valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except ValueError:
        return False
    return True


def _temp_path(path: Path) -> Path:
    # Same directory as the target so os.replace is an atomic rename on one filesystem.
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def _discard(path: Path) -> None:
    # Synchronous on purpose: it also runs while a cancellation is propagating.
    with contextlib.suppress(OSError):
        path.unlink()


@contextlib.contextmanager
def _unavailable_on_oserror() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(f"local storage failed: {exc.strerror or exc}") from exc
