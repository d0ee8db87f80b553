"""Single-use upload URLs for the local backend: a PUT lands only until a completion seals its key.

Why this is race-free on one disk (every API process on one host sharing the directory):

* A PUT never writes under the key. It streams into a temporary file beside the
  object, checks length and checksum against the signed values, and only then,
  holding the store's upload lock (`flock` on `.meta/uploads.lock`), checks
  that the key has no seal marker and renames the file onto the key. The
  rename is atomic: the key holds one whole body or the next, never a mix.
* `completeChunkUpload` seals the key under the same lock: it creates
  `.meta/<key>.sealed` (refused when one exists: one completion at a time).
  From then on every PUT's check-and-rename sees the marker and is refused
  (HTTP 409); a PUT that renamed before the seal is what completion reads. So
  the bytes completion hashes are the bytes the key keeps, and a READY chunk's
  object never changes again. The marker is fsynced before the lock is left,
  so a crash cannot reopen a READY chunk's key.
* A completion that fails (wrong size, type or checksum, or an error) unseals:
  wrong bytes are deleted first, then the marker goes, and the same URL may PUT
  again until it expires. Deleting the object deletes its marker too.
* Before completion a second PUT replaces the first (a retried upload); one
  whose body does not match the signed length or checksum replaces nothing.

`flock` locks belong to an open file description, so the lock also excludes
the threads of one process (each critical section opens the file anew). It is
not meant for a directory shared by several hosts over a network filesystem.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from domain.errors import InvalidState

_LOCK_NAME = "uploads.lock"


class UploadSealed(Exception):
    """A PUT arrived after a completion sealed the key (the upload URL is used up)."""


class UploadSeals:
    """The seal markers and the lock of one storage root; every method is blocking (run it in a thread)."""

    def __init__(self, meta_dir: Path) -> None:
        self._meta_dir = meta_dir

    def marker(self, key: str) -> Path:
        return self._meta_dir / f"{key}.sealed"

    def publish(self, key: str, temp: Path, target: Path, write_meta: Callable[[], None]) -> None:
        """Rename the finished temp file onto the key, unless the key is sealed (then UploadSealed)."""
        with self._locked():
            if self.marker(key).exists():
                raise UploadSealed(key)
            write_meta()
            os.replace(temp, target)

    def seal(self, key: str, target: Path) -> bool:
        """Seal the key if an object was uploaded to it; False when there is none."""
        marker = self.marker(key)
        with self._locked():
            if marker.exists():
                raise InvalidState("This upload is being completed right now; ask again in a moment.")
            if not target.is_file():
                return False
            marker.parent.mkdir(parents=True, exist_ok=True)
            with marker.open("xb") as handle:
                os.fsync(handle.fileno())
            _fsync_dir(marker.parent)
        return True

    def mark(self, key: str) -> None:
        """Seal the key before its object arrives (an object copied in from another directory)."""
        marker = self.marker(key)
        with self._locked():
            marker.parent.mkdir(parents=True, exist_ok=True)
            with marker.open("wb") as handle:
                os.fsync(handle.fileno())
            _fsync_dir(marker.parent)

    def unseal(self, key: str, discard: Callable[[], None] | None) -> None:
        """Drop the seal (after `discard`, which deletes the object, when given)."""
        with self._locked():
            if discard is not None:
                discard()
            with contextlib.suppress(FileNotFoundError):
                self.marker(key).unlink()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._meta_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._meta_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            # Closing the descriptor releases the lock.
            os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
