"""The content type of each local object, kept in a JSON sidecar file beside the object tree."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aiofiles
import aiofiles.os

from infrastructure.storage.local_files import discard_file, temp_path


class ContentTypeSidecars:
    """``<dir>/<key>.json`` holds ``{"content_type": ...}``; each write replaces the file atomically."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def path(self, key: str) -> Path:
        return self._dir / f"{key}.json"

    def write_now(self, key: str, content_type: str) -> None:
        # Blocking twin of `write`, for the upload lock's critical section (which runs in a thread).
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
        try:
            tmp.write_text(json.dumps({"content_type": content_type}), encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:
            discard_file(tmp)
            raise

    async def write(self, key: str, content_type: str) -> None:
        path = self.path(key)
        await aiofiles.os.makedirs(path.parent, exist_ok=True)
        tmp = temp_path(path)
        try:
            async with aiofiles.open(tmp, "x", encoding="utf-8") as out:
                await out.write(json.dumps({"content_type": content_type}))
            await aiofiles.os.replace(tmp, path)
        except BaseException:
            discard_file(tmp)
            raise

    async def read(self, key: str) -> str | None:
        try:
            async with aiofiles.open(self.path(key), encoding="utf-8") as handle:
                meta = json.loads(await handle.read())
        except (FileNotFoundError, ValueError):
            return None
        content_type = meta.get("content_type") if isinstance(meta, dict) else None
        return content_type if isinstance(content_type, str) else None
